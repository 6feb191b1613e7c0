"""`litelvlm retention` on a model family's pipeline, UniPixel (tiny random weights, CPU, one COCO-128 image):
the LLM-side methods it runs, budgets planned against the image's own N (above it: skipped with a warning),
one expression per prompt, each kept token's part, stage and prune layer read from its Selection and
declaration."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from litelvlm.budget import Budget
from litelvlm.cli import main
from litelvlm.methods import get_method

MODEL = "unipixel-tiny-random:0"
METHODS = ["none", "fastv", "dart", "divprune", "llm-attention"]


def _run(coco, out, *extra) -> int:
    return main(
        ["retention", "--model", MODEL, "--refer-dir", str(coco), "--limit-images", "1", "--out", str(out),
                 *map(str, extra)])


@pytest.fixture(scope="module")
def results(coco128, tmp_path_factory):
    out = tmp_path_factory.mktemp("retention") / "run"
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("analysis.common.grounding.grounding_runs").addHandler(handler)
    try:
        assert _run(coco128, out, "--methods", ",".join(METHODS), "--budgets", "100000,64,8") == 0
    finally:
        logging.getLogger("analysis.common.grounding.grounding_runs").removeHandler(handler)
    return out, [r.getMessage() for r in records]


def test_budgets_are_planned_against_the_image_n(results):
    out, warnings = results
    visual = pd.read_csv(out / "visual_tokens.csv")
    assert len(visual) == 1
    image_id, n = str(visual["image_id"].iloc[0]), int(visual["num_visual"].iloc[0])
    assert n == visual["grid_h"].iloc[0] * visual["grid_w"].iloc[0] and 64 < n < 100000
    assert warnings == [f"image {image_id} has {n} visual tokens: budget(s) 100000 skipped"]
    table = pd.read_parquet(out / "retention.parquet")
    assert set(zip(table["method"], table["budget"])) == \
        {("none", Budget.ALL.column)} | {(m, b) for m in METHODS[1:] for b in (64, 8)}
    assert (table["num_visual"] == n).all()
    for (method, budget, _text), g in table.groupby(["method", "budget", "text"]):
        k = n if budget == Budget.ALL.column else budget
        assert len(g) == k and g["patch"].is_unique and g["patch"].between(0, n - 1).all(), (method, budget)
        assert g["position"].tolist() == list(range(k))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["family"] == "unipixel" and cfg["num_patches"] is None
    assert cfg["grids"] == {image_id: [int(visual["grid_h"].iloc[0]), int(visual["grid_w"].iloc[0])]}


def test_one_expression_per_prompt_and_what_each_stage_kept(results):
    out, _ = results
    table = pd.read_parquet(out / "retention.parquet")
    texts = set(table["text"])
    # UniPixel asks one expression per prompt
    assert 1 <= len(texts) <= 3 and not any(" | " in t for t in texts)
    for method, g in table.groupby("method"):
        assert (g["stage"] == get_method(method).stage.name).all()
    assert (table.loc[table["method"] == "fastv", "prune_layer"] == 2).all()  # FastV's default K = 2
    assert (table.loc[table["method"].isin(["none", "divprune"]), "prune_layer"] == 0).all()
    assert set(table.loc[table["method"] == "none", "part"]) == {"kept"}
    assert set(table.loc[table["method"] == "dart", "part"]) <= {"kept", "pivots"}
    scores = pd.read_parquet(out / "retention_scores.parquet")
    # the methods whose Selection has scores
    assert {"fastv", "dart", "llm-attention"} <= set(scores["method"])
    assert np.isfinite(scores["score"]).all()


def test_figures_draw_from_the_family_tables(results):
    from analysis.retention.compute import load_retention
    from analysis.retention.figure_set import draw_retention

    figs = draw_retention(load_retention(results[0]))
    assert list(figs) == ["grid_0"]  # LiteLVLM's stage figures need LiteLVLM, which UniPixel does not run yet


@pytest.mark.parametrize(("methods", "why"), [("fastv,clip-grid-only", "per-token scores"),
                                              ("one-axis-only", "1-D RoPE")])
def test_a_method_the_family_does_not_run_is_refused_before_writing(coco128, tmp_path, methods, why, capsys,
                                                                    unoffered_methods):
    out = tmp_path / "run"
    assert _run(coco128, out, "--methods", methods, "--budgets", 8) == 2
    assert why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_litelvlm_keeps_merged_tokens_through_the_mapped_clip(coco128, tmp_path):
    """LiteLVLM on UniPixel (an external CLIP mapped onto the merged grid, this project's adaptation): its
    kept tokens are merged-token indices labelled by its own parts; one expression per prompt, so T = 1 and
    every kept token is a similarity token (no context share), while ``litelvlm-ctx`` keeps both parts."""
    out = tmp_path / "run"
    assert _run(coco128, out, "--methods", "litelvlm,litelvlm-ctx", "--budgets", 8) == 0
    table = pd.read_parquet(out / "retention.parquet")
    n = int(pd.read_csv(out / "visual_tokens.csv")["num_visual"].iloc[0])
    assert table["patch"].between(0, n - 1).all() and (table["stage"] == "clip").all()
    per = table.groupby(["method", "text"])["patch"].nunique()
    assert (per == 8).all()
    assert set(table.loc[table["method"] == "litelvlm", "part"]) == {"similarity"}
    assert set(table.loc[table["method"] == "litelvlm-ctx", "part"]) == {"similarity", "context"}
