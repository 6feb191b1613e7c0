"""``eval-video --batch-size B`` on the tiny random UniPixel and Sa2VA: B expressions of one video through the
LLM in one padded, masked forward (``PipelineVideoRunner.ground``, ``GroundingPipeline.ground_many``),
each pruned by its own selection, each expression's masks then from SAM 2's memory as at batch 1. In float32
the masks equal batch 1's for B = 2..4 over an odd count of expressions (B dividing it or not), the [SEG]
states and mask logits up to rounding; the methods pruning inside the LLM run at batch 1 with the reason. (The
tiny UniPixel's mask gate is closed for seed 0: its logits are constant, its [SEG] states are not.)
VideoGLaMM's: ``tests/litelvlm/videoglamm/test_video_runner.py``."""

from __future__ import annotations

import pytest

from analysis.video.batches import VideoBatchCheck, expression_results
from analysis.video.options import VideoArgs
from litelvlm.budget import Budget
from litelvlm.registry.families import video_eval
from tests.fixtures.video_batches import same_as_batch_one, video_records

#: the expressions of one video grounded together: an odd count, which B = 2 and 4 do not divide
COUNT = 5


def _runner(model: str, tmp_path, **options):
    return video_eval(model).runner(VideoArgs(out=str(tmp_path / "out"), model=model, **options))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return video_records(tmp_path_factory.mktemp("videos"), COUNT)


@pytest.fixture(scope="module")
def sa2va(tmp_path_factory):
    return _runner("sa2va-tiny-random:0", tmp_path_factory.mktemp("sa2va"))


@pytest.fixture(scope="module")
def unipixel(tmp_path_factory):
    return _runner("unipixel-tiny-random:0", tmp_path_factory.mktemp("unipixel"))


def test_sa2va_batches_equal_batch_one(sa2va, records):
    assert sa2va.batch_error("litelvlm") is None
    same_as_batch_one(sa2va, records, "litelvlm", Budget(81))


def test_unipixel_batches_equal_batch_one(unipixel, records):
    assert unipixel.batch_error("litelvlm") is None
    same_as_batch_one(unipixel, records[:3], "litelvlm", Budget(81), sizes=(2,))   # the slow test: B = 2..4


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sa2va", "unipixel"])
@pytest.mark.parametrize("method,budget",
                         [("litelvlm", 81), ("none", 576), ("divprune", 196), ("random", 81)])
def test_more_methods_batch_equal_batch_one(request, records, family, method, budget):
    same_as_batch_one(request.getfixturevalue(family), records, method, Budget(budget))


def test_the_batch_check_counts_no_differing_pixel_in_float32(sa2va, records):
    check = VideoBatchCheck(3)
    got = expression_results(sa2va, records, "litelvlm", Budget(81), 3, check)
    assert len(got) == COUNT
    [(n, pixels, differing, worst)] = check.runs.values()
    assert n == 3 and pixels == 3 * records[0].mask(0).size * len(records[0].frames) and differing == 0
    assert worst < 1e-4


def test_a_method_pruning_inside_the_llm_runs_at_batch_one(sa2va):
    assert "prunes inside the LLM" in sa2va.batch_error("fastv")
