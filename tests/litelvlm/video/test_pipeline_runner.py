"""``eval-video --batch-size B`` on the tiny random UniPixel and Sa2VA: B expressions of one video through the LLM in
one padded, masked forward (``PipelineVideoRunner.ground``, ``litelvlm.lvlm.batched.ground_batch``), each pruned by
its own selection, each expression's masks then from SAM 2's memory as at batch 1. In float32 the masks equal batch 1's
for B = 2..4 over an odd count of expressions (B dividing it or not), the [SEG] states and mask logits up to rounding;
VideoGLaMM and the methods pruning inside the LLM run at batch 1 with the reason. (The tiny UniPixel's mask gate is
closed for seed 0: its logits are constant, its [SEG] states are not.)"""

from __future__ import annotations

import pytest
import torch

from analysis.video.batches import VideoBatchCheck, expression_results
from analysis.video.options import VideoArgs
from litelvlm.budget import Budget
from litelvlm.families import video_eval
from litelvlm.video.datasets import load_video_expressions
from litelvlm.video.ref_davis import by_video
from litelvlm.video.synthetic import write_synthetic_videos

#: the expressions of one video grounded together: an odd count, which B = 2 and 4 do not divide
COUNT = 5


def _runner(model: str, tmp_path, **options):
    return video_eval(model).runner(VideoArgs(out=str(tmp_path / "out"), model=model, **options))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = write_synthetic_videos(tmp_path_factory.mktemp("videos") / "synthetic", videos=1, frames=4, size=(64, 48),
                                  seed=0)
    recs = next(iter(by_video(load_video_expressions("ref-davis17", root, "valid")).values()))
    assert len(recs) >= COUNT and len({r.sentence for r in recs[:COUNT]}) > 1   # the texts (and lengths) differ
    return recs[:COUNT]


def _same_as_batch_one(run, records, method: str, budget: Budget, sizes=(2, 3, 4)) -> None:
    """Batches of each size in ``sizes`` (the last one short where B does not divide the count) against batch 1."""
    alone = run.ground(records, method, budget, batched=False)           # batch 1: ``expression``'s own calls
    one = [run.result(rec, *g) for rec, g in zip(records, alone, strict=True)]
    first = run.expression(records[0], method, budget)
    assert torch.equal(first[0], one[0][0]) and first[1:] == one[0][1:]
    assert torch.cat([out.seg_hidden.flatten() for _, _, out in alone]).std() > 0   # the states compared vary
    for b in sizes:
        for start in range(0, len(records), b):
            part = records[start:start + b]
            for i, (rec, got) in enumerate(zip(part, run.ground(part, method, budget), strict=True)):
                (_, k1, o1), (_, kb, ob) = alone[start + i], got
                assert int(k1) == int(kb) and torch.equal(o1.kept_indices, ob.kept_indices)
                assert torch.equal(o1.masks, ob.masks), b                  # identical masks in float32
                torch.testing.assert_close(ob.seg_hidden, o1.seg_hidden, rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(ob.mask_logits, o1.mask_logits, rtol=1e-4, atol=1e-4)
                masks, tokens, extra = run.result(rec, *got)
                assert torch.equal(masks, one[start + i][0]) and (tokens, extra) == one[start + i][1:]


@pytest.fixture(scope="module")
def sa2va(tmp_path_factory):
    return _runner("sa2va-tiny-random:0", tmp_path_factory.mktemp("sa2va"))


@pytest.fixture(scope="module")
def unipixel(tmp_path_factory):
    return _runner("unipixel-tiny-random:0", tmp_path_factory.mktemp("unipixel"))


def test_sa2va_batches_equal_batch_one(sa2va, records):
    assert sa2va.batch_error("litelvlm") is None
    _same_as_batch_one(sa2va, records, "litelvlm", Budget(81))


def test_unipixel_batches_equal_batch_one(unipixel, records):
    assert unipixel.batch_error("litelvlm") is None
    _same_as_batch_one(unipixel, records[:3], "litelvlm", Budget(81), sizes=(2,))   # the slow test: B = 2..4


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sa2va", "unipixel"])
@pytest.mark.parametrize("method,budget", [("litelvlm", 81), ("none", 576), ("divprune", 196), ("random", 81)])
def test_more_methods_batch_equal_batch_one(request, records, family, method, budget):
    _same_as_batch_one(request.getfixturevalue(family), records, method, Budget(budget))


def test_the_batch_check_counts_no_differing_pixel_in_float32(sa2va, records):
    check = VideoBatchCheck(3)
    got = expression_results(sa2va, records, "litelvlm", Budget(81), 3, check)
    assert len(got) == COUNT
    [(n, pixels, differing, worst)] = check.runs.values()
    assert n == 3 and pixels == 3 * records[0].mask(0).size * len(records[0].frames) and differing == 0
    assert worst < 1e-4


def test_a_method_pruning_inside_the_llm_and_videoglamm_run_at_batch_one(sa2va, tmp_path):
    assert "prunes inside the LLM" in sa2va.batch_error("fastv")
    run = _runner("videoglamm-tiny-random:0", tmp_path)
    assert "clip by clip" in run.batch_error("litelvlm")
