"""The leaderboard's computations (:mod:`analysis.common.stats.leaderboard`) on hand-made inputs: the
masks' RLE and IoU (both empty: 1), the layer average of a token schedule (K before the LLM, between K and N
for FastV), the attention flag, each row's loyalty against ``none``, the columns a summary gets (only those
whose inputs exist) and the comparisons with the extra references in a Holm family of their own."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.common.presentation.screen import board_text
from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import leaderboard as lb
from analysis.common.stats.bootstrap import unit_stat
from litelvlm.budget import Budget
from litelvlm.methods import get_method


def _mask(*pixels: tuple[int, int], shape=(4, 5)) -> np.ndarray:
    m = np.zeros(shape, bool)
    for p in pixels:
        m[p] = True
    return m


def test_masks_iou_of_rles_is_the_pixel_iou_and_one_when_both_are_empty():
    a, b = _mask((0, 0), (1, 1)), _mask((1, 1), (2, 2), (3, 3))
    ea, eb, empty = (lb.encode_masks(m[None]) for m in (a, b, _mask()))
    assert lb.masks_iou(ea, eb) == pytest.approx(1 / 4) and lb.masks_iou(ea, ea) == 1.0
    assert lb.masks_iou(empty, lb.encode_masks(_mask()[None])) == 1.0 and lb.masks_iou(empty, ea) == 0.0
    # a video: the mean over its frames
    video = lb.masks_iou(lb.encode_masks(np.stack([a, a])), lb.encode_masks(np.stack([a, b])))
    assert video == pytest.approx((1 + 1 / 4) / 2)
    with pytest.raises(ValueError, match="frames"):
        lb.masks_iou(ea, lb.encode_masks(np.stack([a, b])))


def test_layer_average_of_the_declared_schedules():
    assert lb.layer_average(((0, 576), (2, 64)), 576, 4) == (576 * 2 + 64 * 2) / 4
    assert lb.layer_average(((0, 64),), 576, 32) == 64.0
    assert lb.layer_average(((2, 10),), 100, 4) == (100 * 2 + 10 * 2) / 4   # N before the first stage
    fastv, litelvlm = get_method("fastv"), get_method("litelvlm")
    avg = lb.layer_avg_tokens(fastv, Budget(64), 576, 32, {})
    assert 64 < avg < 576 and avg == (576 * 2 + 64 * 30) / 32
    assert lb.layer_avg_tokens(fastv, Budget(64), 576, 32, {"layer": 4}) == (576 * 4 + 64 * 28) / 32
    assert lb.layer_avg_tokens(litelvlm, Budget(64), 576, 32) == 64.0
    assert lb.layer_avg_tokens(get_method("none"), Budget.ALL, 576, 32) == 576.0
    # a method without a schedule for such an LLM: NaN, not an error
    assert math.isnan(lb.layer_avg_tokens(get_method("sparsevlm"), Budget(64), 576, 2))


def test_reads_attention_from_the_methods_declarations():
    got = lb.reads_attention(["fastv", "litelvlm", "random", "sparsevlm"], 32)
    assert got == {"fastv": True, "litelvlm": False, "random": False, "sparsevlm": True}
    assert lb.reads_attention(["sparsevlm"], 2) == {"sparsevlm": None}   # no schedule for 2 layers


def _rows() -> pd.DataFrame:
    a, b = _mask((0, 0), (1, 1)), _mask((1, 1))
    rows = [("none", 576, 1, 0, a), ("none", 576, 2, 0, b), ("x", 64, 1, 0, b), ("x", 64, 2, 0, b)]
    return pd.DataFrame([{"method": m, "budget": k, "image_id": i, "turn": t,
                          lb.PRED_RLE: lb.encode_masks(p[None])} for m, k, i, t, p in rows])


def test_loyalty_of_each_row_is_against_none_for_the_same_expression():
    rows = _rows()
    values = lb.loyalty_values(rows, ["image_id", "turn"])
    assert values.tolist() == pytest.approx([1.0, 1.0, 0.5, 1.0])
    assert lb.loyalty_values(rows[rows.method != "none"], ["image_id", "turn"]) is None   # no none: no column
    old = rows.assign(**{lb.PRED_RLE: [None, *rows[lb.PRED_RLE][1:]]})
    assert lb.loyalty_values(old, ["image_id", "turn"]) is None   # a row without its mask
    stats = lb.loyalty_stats(rows, values, rows["image_id"].to_numpy())
    assert stats[("x", 64)].value() == pytest.approx(0.75) and stats[("none", 576)].n_units == 2


def _summary() -> pd.DataFrame:
    return pd.DataFrame({"method": ["none", "random", "x"], "budget": [576, 64, 64],
                         "ciou": [0.5, 0.25, 0.4]})


def test_add_columns_writes_only_what_its_inputs_give():
    summary = _summary()
    comparisons = pd.DataFrame([{"metric": "ciou", "method": "x", "budget": 64, "reference": "random",
                                 "difference": 0.15, "p": 0.01, "p_adjusted": 0.03}])
    plain = lb.add_columns(summary, comparisons.iloc[:0], ["ciou"], 10, 0)
    assert list(plain.columns) == ["method", "budget", "ciou", "share_of_unpruned_ciou",
                                   "diff_vs_random_ciou", "p_adjusted_vs_random_ciou"]
    assert plain["share_of_unpruned_ciou"].tolist() == [1.0, 0.5, 0.8]
    # without none: no share, and without random no comparison
    alone = lb.add_columns(summary[summary.method == "x"], comparisons, ["ciou"], 10, 0)
    assert list(alone.columns) == ["method", "budget", "ciou"]
    rows = pd.DataFrame({"method": ["random", "x", "x"], "budget": [64, 64, 64],
                         lb.LAYER_AVG: [64.0, 320.0, 320.0], lb.PRUNE_MS: [2.0, math.nan, math.nan]})
    loyalty = {("none", 576): unit_stat(np.ones(6), np.arange(6)),
               ("x", 64): unit_stat(np.array([.5, .7, .9, .6, .8, .7]), np.arange(6))}
    full = lb.add_columns(summary, comparisons, ["ciou"], 50, 0, loyalty=loyalty, rows=rows,
                          reads={"none": False, "random": False, "x": True})
    assert lb.board_columns(full.columns) == [
        "loyalty", "loyalty_lo", "loyalty_hi", "loyalty_mc", "layer_avg_tokens", "share_of_unpruned_ciou",
        "diff_vs_random_ciou", "p_adjusted_vs_random_ciou", "reads_attention", "prune_ms"]
    x = full.set_index("method").loc["x"]
    assert x.loyalty == pytest.approx(0.7) and x.loyalty_lo <= 0.7 <= x.loyalty_hi
    assert (x.diff_vs_random_ciou, x.p_adjusted_vs_random_ciou, x.layer_avg_tokens) == (0.15, 0.03, 320.0)
    assert bool(x.reads_attention) and math.isnan(x.prune_ms)
    assert full.set_index("method").loc["random"].prune_ms == 2.0
    assert math.isnan(full.set_index("method").loc["random"].loyalty)   # no rows of its: NaN
    main, board = lb.split_view(full)
    assert list(main.columns) == ["method", "budget", "ciou"]
    assert list(board.columns)[:2] == ["method", "budget"]
    assert "leaderboard" in board_text(board) and board_text(None) == ""


def test_extra_references_are_compared_after_the_rest_each_comparison_a_family():
    rng = np.random.default_rng(0)
    units = np.arange(8)
    stats = {(m, b): {"giou": unit_stat(rng.uniform(size=8), units)}
             for m, b in [("none", 576), ("litelvlm", 64), ("random", 64), ("fastv", 64), ("fastv", 32)]}
    before = acc.comparisons_table(stats, ["giou"], 50, 0, "image")
    after = acc.comparisons_table(stats, ["giou"], 50, 0, "image", extra_references=lb.REFERENCES)
    pd.testing.assert_frame_equal(after.iloc[:len(before)], before)   # the rows before: untouched
    extra = after.iloc[len(before):]
    assert set(zip(extra.method, extra.budget)) == {("litelvlm", 64), ("fastv", 64)}   # random only at 64
    assert (extra.reference == "random").all() and (extra.family_size == 1).all()   # one metric: giou
    row = extra[extra.method == "fastv"].iloc[0]
    assert row.difference == pytest.approx(stats[("fastv", 64)]["giou"].value()
                                           - stats[("random", 64)]["giou"].value())
