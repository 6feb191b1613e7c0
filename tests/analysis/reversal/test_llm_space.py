"""``litelvlm reversal --space llm --grid unipixel`` (this project's study option): the reversal asked in
UniPixel's LLM input space, each merged token's relevance (:mod:`litelvlm.llm.relevance`, tested in
tests/litelvlm/llm/test_relevance.py) against the referent's coverage on the merged grid, and figure set 10's
drawing of it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from litelvlm.cli import main
from tests.unipixel_tiny import MODEL, tiny_unipixel  # noqa: E402


def _run(coco, out, *extra) -> int:
    return main(
        ["reversal", "--refer-dir", str(coco), "--split", "val", "--limit-sentences", "4", "--n-boot", "50",
                 "--out", str(out), *map(str, extra)])


@pytest.fixture(scope="module")
def llm_run(coco128, tmp_path_factory):
    out = tmp_path_factory.mktemp("reversal") / "llm-space"
    assert _run(coco128, out, "--space", "llm", "--grid", "unipixel", "--model", MODEL, "--save-maps", 1) == 0
    return out


def test_rows_are_the_metrics_of_the_relevance_on_the_merged_grid(llm_run, coco128):
    from analysis.common.measures.clip_reversal import load_records, reversal_metrics
    from analysis.common.measures.merged_grid import merged_coverage
    from analysis.reversal.options import ReversalArgs
    from litelvlm.llm.relevance import prompt_relevance

    rows = pd.read_parquet(llm_run / "reversal.parquet")
    cfg = json.loads((llm_run / "config.json").read_text())
    assert cfg["args"]["space"] == "llm" and cfg["clip"] == {"model": MODEL, "space": "llm",
                                                             "scores": cfg["clip"]["scores"]}
    assert len(rows) == 4 and (rows["layer"] == 0).all() and (rows["model"] == MODEL).all()
    assert (pd.read_csv(llm_run / "summary.csv")["weights"] == "random").all()
    records = {r.sent_id: r for r in load_records(ReversalArgs(out="x", refer_dir=str(coco128), split="val",
                                                                limit_sentences=4))}
    pipe, images = tiny_unipixel(), {}
    for _, row in rows.iterrows():
        r = records[int(row["sent_id"])]
        with torch.no_grad():
            if r.image_id not in images:
                images[r.image_id] = pipe.prepare_image(r.image())
            s = prompt_relevance(pipe, pipe.with_sentences(images[r.image_id], [r.sentence])).double().numpy()
        inside = merged_coverage(r.mask(), "unipixel").inside(0.5)
        assert row["n_patches"] == s.size == inside.size
        want = reversal_metrics(s[None], inside)
        assert row["auroc_reversed"] == pytest.approx(float(want["auroc_reversed"][0]), abs=1e-12)
        assert row["gap"] == pytest.approx(float(want["gap"][0]), abs=1e-9)
        assert row["text"].startswith("Please segment") and r.sentence.rstrip(".") in row["text"]
    maps = pd.read_parquet(llm_run / "similarity_maps.parquet")
    assert len(maps) == 1 and len(maps["similarity"].iloc[0]) == maps["rows"].iloc[0] * maps["cols"].iloc[0]


def test_refusals(coco128, tmp_path, capsys):
    assert _run(coco128, tmp_path / "a", "--space", "llm", "--model", MODEL) == 2
    assert "add --grid FAMILY (unipixel)" in capsys.readouterr().err
    assert _run(coco128, tmp_path / "b", "--space", "llm", "--grid", "unipixel", "--model",
                "tiny336-random") == 2
    assert "(random presets: " in capsys.readouterr().err  # a CLIP is no LVLM of any family
    assert _run(coco128, tmp_path / "c", "--space", "llm", "--grid", "unipixel", "--model",
                "tiny-random:0") == 2
    assert "of the --grid family (unipixel)" in capsys.readouterr().err  # a GLaMM
    assert not any((tmp_path / k / "reversal.parquet").exists() for k in "bc")


def test_family_10_draws_it_labelled_with_its_weights(llm_run, coco128, tmp_path):
    """Beside a CLIP run on the merged grid: the LLM-space run is left out of AUROC-by-layer, drawn in
    ``auroc_llm_space`` with the weights that made each run named, and its map titled by its space."""
    from analysis.common.presentation.style import LABELLED_GID
    from analysis.reversal_grid.figure_set import draw_reversal_grid, read_reversal_grid

    clip = llm_run.parent / "unipixel-grid"
    assert _run(coco128, clip, "--grid", "unipixel", "--pad-to-square", "--model", "tiny336-random") == 0
    tables = read_reversal_grid(llm_run.parent)
    summary = tables["summary"]
    assert set(summary["space"]) == {"clip", "llm"}
    assert [e["title"].endswith("(LLM input space)") for e in tables["examples"]] == [True]
    figs = draw_reversal_grid(tables)
    assert set(figs) == {"map_0", "auroc_by_layer", "auroc_llm_space"}
    lines = figs["auroc_by_layer"].axes[0].get_lines()
    assert not any("LLM" in str(ln.get_label()) for ln in lines)
    fig = figs["auroc_llm_space"]
    assert fig.get_gid() == LABELLED_GID
    text = " ".join(t.get_text() for t in fig.texts)
    assert "RANDOM WEIGHTS" in text and MODEL in text and "tiny336-random" in text
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any("LLM's input space" in t for t in labels) and any("layer" in t for t in labels)
    ours = summary[(summary["space"] == "llm") & (summary["breakdown"] == "all")]["auroc_reversed_mean"]
    assert np.isfinite(ours).all()
