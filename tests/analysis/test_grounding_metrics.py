"""eval-grounding's metrics, plan and official-protocol sampling, against hand computations."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.common.grounding.grounding_runs import official_turns
from analysis.common.grounding.grounding_scoring import mask_stats, summarize
from analysis.grounding.compute import protocol_difference
from litelvlm.data.templates import ANSWER_LIST, SEG_QUESTIONS, format_question


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


def _recs(n):
    return [SimpleNamespace(ref_id=i // 2, sent_id=i, order=i, sentence=f"Thing {i}. ") for i in range(n)]


def test_official_turns_seeded():
    recs = _recs(7)
    pipe = SimpleNamespace(family="glamm")   # the family whose card has an official multi-expression protocol
    a = official_turns(pipe, recs, seed=0, image_id=9, max_sentences=3)
    assert a == official_turns(pipe, list(reversed(recs)), seed=0, image_id=9, max_sentences=3)  # REFER order
    picked, turns = a
    assert len(picked) == 3 and len({r.sent_id for r in picked}) == 3
    for r, (q, ans) in zip(picked, turns):
        assert ans in ANSWER_LIST and "[SEG]" in ans
        assert any(q == format_question(t, r.sentence) for t in SEG_QUESTIONS)
        assert f"thing {r.sent_id}." in q                          # strip().lower(), period kept
    others = {tuple(r.sent_id for r in official_turns(pipe, recs, s, 9, 3)[0]) for s in range(12)}
    assert len(others) > 1                                         # the seed changes the sample
    small = official_turns(pipe, _recs(2), 0, 9, 3)[0]
    assert [r.sent_id for r in small] == [0, 1]                    # fewer than 3: all of them, in order


# -- ground truth of multi-polygon referents: the official REFER sum and its scoring ------------------------
def _official_intersection_and_union(output, target, k=2, ignore_index=255):
    """``intersectionAndUnionGPU``: sejong-rcv/LiteLVLM @5896153, ``tools/utils.py`` L92-104 (transcribed)."""
    import torch

    output = output.view(-1)
    target = target.view(-1)
    output[target == ignore_index] = ignore_index
    intersection = output[output == target]
    area_intersection = torch.histc(intersection, bins=k, min=0, max=k - 1)
    area_output = torch.histc(output, bins=k, min=0, max=k - 1)
    area_target = torch.histc(target, bins=k, min=0, max=k - 1)
    return area_intersection, area_output + area_target - area_intersection, area_target


def _official_get_mask(segmentation, height, width):
    """REFER ``getMask``: sejong-rcv/LiteLVLM @5896153, ``dataset/utils/refcoco_refer.py`` L312-320
    (polygons)."""
    from pycocotools import mask

    rle = mask.frPyObjects(segmentation, height, width)
    m = mask.decode(rle)
    m = np.sum(m, axis=2)
    return m.astype(np.uint8)


OVERLAPPING = [[2, 2, 14, 2, 14, 14, 2, 14], [8, 8, 20, 8, 20, 20, 8, 20], [30, 2, 36, 2, 36, 8, 30, 8]]


def test_sum_parts_equal_the_official_get_mask():
    from litelvlm.data.refer import decode_segmentation

    summed = decode_segmentation(OVERLAPPING, 24, 40, parts="sum")
    assert summed.dtype == np.uint8 and summed.max() == 2  # the two squares overlap
    assert np.array_equal(summed, _official_get_mask(OVERLAPPING, 24, 40))
    union = decode_segmentation(OVERLAPPING, 24, 40)
    assert union.dtype == bool and np.array_equal(union, summed > 0)
    with pytest.raises(ValueError, match="parts must be one of"):
        decode_segmentation(OVERLAPPING, 24, 40, parts="max")


@pytest.mark.parametrize("seed", range(6))
def test_mask_stats_on_part_counts_equal_the_official_metric(seed):
    """Class 1 of the official intersection/union: a pixel counted 2 is neither target nor intersection,
    but predicted foreground there is in the union (a false positive); a bool target is unchanged."""
    import torch

    rng = np.random.default_rng(seed)
    gt = rng.choice([0, 1, 2, 3], size=(17, 23), p=[0.5, 0.3, 0.15, 0.05]).astype(np.uint8)
    pred = rng.random((17, 23)) < 0.4
    inter, union, _ = mask_stats(pred, gt)
    # the official call passes int tensors on CUDA; CPU histc needs floats (the values are small integers)
    oi, ou, _ = _official_intersection_and_union(torch.from_numpy(pred.astype(np.float32)),
                                                 torch.from_numpy(gt.astype(np.float32)))
    assert (inter, union) == (int(oi[1]), int(ou[1]))
    assert (mask_stats(pred, gt > 0)[0], mask_stats(pred, gt > 0)[1]) == (
        int(np.logical_and(pred, gt > 0).sum()), int(np.logical_or(pred, gt > 0).sum()))


def test_gt_parts_default_follows_the_protocol():
    from analysis.common.grounding.grounding_scoring import gt_parts

    assert gt_parts(SimpleNamespace(gt_parts=None, protocol="official")) == "sum"
    assert gt_parts(SimpleNamespace(gt_parts=None, protocol="per-expression")) == "union"
    assert gt_parts(SimpleNamespace(gt_parts="union", protocol="official")) == "union"
