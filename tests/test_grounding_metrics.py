"""eval-grounding's metrics, plan and official-protocol sampling, against hand computations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.grounding import mask_stats, official_turns, plan, protocol_difference, summarize
from litelvlm.data.templates import ANSWER_LIST, SEG_QUESTIONS, format_question
from litelvlm.errors import LiteLVLMError


def _mask(h, w, cells):
    m = np.zeros((h, w), bool)
    for y, x in cells:
        m[y, x] = True
    return m


def test_mask_stats_by_hand():
    pred = _mask(4, 4, [(0, 0), (0, 1), (1, 0), (1, 1)])            # 4 pixels
    gt = _mask(4, 4, [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3)])      # 5 pixels, overlap 1
    assert mask_stats(pred, gt) == (1, 8, 1 / (8 + 1e-5))          # the official epsilon
    empty = np.zeros((4, 4), bool)
    assert mask_stats(empty, empty) == (0, 0, 1.0)                  # empty on empty scores 1
    assert mask_stats(pred, empty) == (0, 4, 0.0)
    assert mask_stats(empty, gt) == (0, 5, 0.0)
    with pytest.raises(ValueError, match="differ in size"):
        mask_stats(pred, np.zeros((3, 4), bool))


def test_summarize_ciou_is_sum_i_over_sum_u():
    rows = pd.DataFrame({
        "method": ["a", "a", "a", "b", "b"], "budget": [64, 64, 64, 64, 64],
        "intersection": [1, 30, 0, 0, 5], "union": [8, 40, 0, 10, 5], "iou": [1 / 8, 30 / 40, 1.0, 0.0, 1.0]})
    s = summarize(rows).set_index("method")
    assert s.loc["a", "ciou"] == pytest.approx(31 / 48)             # not the mean of per-sentence IoUs
    assert s.loc["a", "giou"] == pytest.approx((1 / 8 + 0.75 + 1.0) / 3)
    assert s.loc["b", "ciou"] == pytest.approx(5 / 15) and s.loc["b", "giou"] == pytest.approx(0.5)
    assert s.loc["a", "n"] == 3 and list(s.reset_index().columns) == ["method", "budget", "ciou", "giou", "n"]
    # merging shards: summed I and U over the union of rows, never averaged per-shard cIoU
    shard_mean = (summarize(rows.iloc[:1])["ciou"][0] + summarize(rows.iloc[1:3])["ciou"][0]) / 2
    assert shard_mean != pytest.approx(31 / 48)
    assert summarize(rows.iloc[:0]).empty


def test_protocol_difference():
    pe = pd.DataFrame({"method": ["none"], "budget": [576], "ciou": [0.5], "giou": [0.4], "n": [10]})
    off = pd.DataFrame({"method": ["none"], "budget": [576], "ciou": [0.55], "giou": [0.35], "n": [6]})
    d = protocol_difference(pe, off)
    assert d.loc[0, "delta_ciou"] == pytest.approx(0.05) and d.loc[0, "delta_giou"] == pytest.approx(-0.05)
    assert d.loc[0, "n_per_expression"] == 10 and d.loc[0, "n_official"] == 6


def test_plan():
    assert plan(["none", "litelvlm"], [576, 64], 576) == [("none", 576), ("litelvlm", 576), ("litelvlm", 64)]
    with pytest.raises(LiteLVLMError, match="outside 1..576"):
        plan(["litelvlm"], [600], 576)
    with pytest.raises(LiteLVLMError, match="empty"):
        plan([], [64], 576)
    with pytest.raises(LiteLVLMError, match="unknown|not-a-method"):
        plan(["not-a-method"], [64], 576)


def _recs(n):
    return [SimpleNamespace(ref_id=i // 2, sent_id=i, order=i, sentence=f"Thing {i}. ") for i in range(n)]


def test_official_turns_seeded():
    recs = _recs(7)
    a = official_turns(recs, seed=0, image_id=9, max_sentences=3)
    assert a == official_turns(list(reversed(recs)), seed=0, image_id=9, max_sentences=3)  # REFER order
    picked, turns = a
    assert len(picked) == 3 and len({r.sent_id for r in picked}) == 3
    for r, (q, ans) in zip(picked, turns):
        assert ans in ANSWER_LIST and "[SEG]" in ans
        assert any(q == format_question(t, r.sentence) for t in SEG_QUESTIONS)
        assert f"thing {r.sent_id}." in q                          # strip().lower(), period kept
    others = {tuple(r.sent_id for r in official_turns(recs, s, 9, 3)[0]) for s in range(12)}
    assert len(others) > 1                                         # the seed changes the sample
    small = official_turns(_recs(2), 0, 9, 3)[0]
    assert [r.sent_id for r in small] == [0, 1]                    # fewer than 3: all of them, in order
