"""Token-retention tables and their plots (figure set 3)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from analysis.retention.compute import (
    RetentionArgs,
    load_retention,
    refer_examples,
    retention_tables,
    run_retention,
    synthetic_example,
)
from analysis.retention.plots import plot_retention_grid, plot_retention_stages, token_overlay
from litelvlm.errors import LiteLVLMError

METHODS = ["litelvlm", "litelvlm-ctx", "clip_topsim", "random", "vispruner", "visionzip"]


@pytest.fixture(scope="module")
def tables(tiny_hf_clip):
    im, texts = synthetic_example(56)
    return retention_tables(tiny_hf_clip, [("syn", im, texts)], [16, 8, 4, 40], METHODS)


def test_every_method_keeps_exactly_k_distinct_tokens(tables):
    table, scores, images, meta = tables
    assert meta["budgets"] == [16, 8, 4]  # 40 clipped to the 16 patches, duplicates merged
    for (method, k), g in table.groupby(["method", "budget"]):
        assert len(g) == k and g["patch"].is_unique, (method, k)
        assert g["position"].tolist() == list(range(k))
        assert g["patch"].between(-1 if method == "visionzip" else 0, 15).all()  # -1: VisionZip's CLS
        assert (g["patch"] == -1).sum() == (1 if method == "visionzip" else 0)
    assert set(table["method"]) == set(METHODS)
    assert len(scores) == 16 and images["syn"].shape == (56, 56, 3)


def test_parts_name_the_stage_that_chose_each_token(tables):
    table = tables[0]
    parts = table.groupby("method")["part"].agg(set).to_dict()
    assert parts["litelvlm"] <= {"similarity", "context"}
    assert parts["vispruner"] <= {"important", "diverse"}
    assert parts["visionzip"] <= {"dominant", "contextual"}
    assert parts["random"] == {"kept"}
    # two expressions: each gets K//2 lowest-similarity tokens, the context ranking fills the rest
    ctx = table[(table["method"] == "litelvlm-ctx") & (table["budget"] == 8)]
    assert (ctx["part"] == "context").sum() >= 4


def test_similarity_part_is_the_lowest_similarity_tokens(tiny_hf_clip):
    im, texts = synthetic_example(56)
    table, scores, _, _ = retention_tables(tiny_hf_clip, [("syn", im, texts[:1])], [4], ["litelvlm"])
    chosen = set(table["patch"])
    lowest = set(scores.sort_values("similarity")["patch"].head(4))
    assert chosen == lowest


def test_run_retention_writes_tables_and_is_deterministic(tmp_path, tiny_hf_clip_dir):
    outs = []
    for name in ("a", "b"):
        out = run_retention(RetentionArgs(out=str(tmp_path / name), model=str(tiny_hf_clip_dir),
                                          budgets=["8", "4"], methods=["litelvlm,random"]))
        outs.append(out)
    for f in ("retention.parquet", "retention_scores.parquet"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes()
    d = load_retention(outs[0])
    assert set(d) == {"retention", "scores", "images", "config"}
    assert d["config"]["synthetic"] is True and d["config"]["grid"] == [4, 4]


def test_bad_inputs_are_clear_errors(tmp_path, tiny_hf_clip_dir):
    with pytest.raises(LiteLVLMError, match="missing retention.parquet"):
        load_retention(tmp_path)
    with pytest.raises(LiteLVLMError, match="fastv. acts inside the LLM; retention draws"):
        run_retention(RetentionArgs(out=str(tmp_path / "x"), model=str(tiny_hf_clip_dir), methods=["fastv"]))
    with pytest.raises(LiteLVLMError, match="refs"):
        run_retention(
            RetentionArgs(out=str(tmp_path / "y"), model=str(tiny_hf_clip_dir), refer_dir=str(tmp_path)))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_refer_examples_on_coco128(coco128):
    ex = refer_examples(coco128, 2)
    assert len(ex) == 2 and all(p.exists() and texts for _, p, texts in ex)


def test_plots_return_fig_and_axes(tables):
    table, _, images, meta = tables
    grid = tuple(meta["grid"])
    fig, axes = plot_retention_grid(images["syn"], table, grid)
    assert axes.shape == (len(METHODS), 4)
    plt.close(fig)
    fig, axes = plot_retention_stages(images["syn"], table, grid, method="litelvlm-ctx", budget=8)
    assert len(axes) == 4 and "K=8" in fig._suptitle.get_text()
    plt.close(fig)
    with pytest.raises(ValueError, match="no retention rows"):
        plot_retention_stages(images["syn"], table, grid, budget=3)


def test_token_overlay_dims_pruned_patches():
    img = np.ones((8, 8, 3))
    out = token_overlay(img, (2, 2), {0: "kept"}, dim=0.25)
    assert np.allclose(out[4:, 4:], 0.25) and not np.allclose(out[:4, :4], 0.25)
