"""``eval-video --batch-size B`` on the tiny random VideoGLaMM (``VideoGLaMMRunner.ground``): B expressions of
one video through each clip's LLM forward together, each with its own pruned visual input (every method
through the family's ``ground_many``), each expression's
masks then from SAM 2 as at batch 1. In float32 the rows and masks equal batch 1's for B = 2..4 over an odd
count of expressions (B dividing it or not), the mask logits up to rounding; FastV runs at batch 1 with the
reason."""

from __future__ import annotations

import pytest

from analysis.video.options import VideoArgs
from litelvlm.budget import Budget
from litelvlm.registry.families import video_eval
from tests.fixtures.video_batches import same_as_batch_one, video_records

#: early: the default tests take about 6 s together; near the end of the collection they kept one worker
#: running alone (the module's tests stay together, sharing its runner)
pytestmark = pytest.mark.early

MODEL = "videoglamm-tiny-random:0"


def _runner(tmp_path, **options):
    return video_eval(MODEL).runner(VideoArgs(out=str(tmp_path / "out"), model=MODEL, **options))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _runner(tmp_path_factory.mktemp("videoglamm"))


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return video_records(tmp_path_factory.mktemp("videos"), 5)


def test_the_baseline_batches_equal_batch_one(run, records):
    assert run.batch_error("none") is None and "prunes inside the LLM" in run.batch_error("fastv")
    # the slow tests: 5 expressions, B = 2..4
    same_as_batch_one(run, records[:3], "none", Budget(576), sizes=(2,))


def test_every_method_is_grounded_through_the_familys_ground_many(run, records, monkeypatch):
    """The baseline, a CLIP-side and an LLM-side method all go through ``ground_many`` (no path of the
    runner's own), each clip once per chunk of expressions; the rows say what each frame kept."""
    calls = []
    ground_many = run.pipe.ground_many

    def spy(inputs, method, budget, **kw):
        calls.append((method, len(inputs)))
        return ground_many(inputs, method, budget, **kw)

    monkeypatch.setattr(run.pipe, "ground_many", spy)
    got = {m: run.ground(records[:2], m, Budget(k)) for m, k in [("none", 576), ("vispruner", 81),
                                                                   ("fastv", 81)]}
    assert calls == [("none", 2), ("vispruner", 2), ("fastv", 2)]   # FastV: ground_many runs each alone
    rows = {m: run.result(records[0], *g[0]) for m, g in got.items()}
    # ``pool``: each frame's kept patches pooled to 12 x 12, as the unpruned projection
    assert rows["none"][1] == rows["vispruner"][1] == 144 and rows["fastv"][1] is None
    assert rows["none"][2] == rows["vispruner"][2] == {"llm_visual_tokens": run.pipe.num_visual_tokens}
    assert rows["fastv"][2] == {"llm_visual_tokens": run.pipe.llm_budget(81)}


@pytest.mark.slow
@pytest.mark.parametrize("method,budget",
                         [("none", 576), ("vispruner", 81), ("litelvlm", 196), ("divprune", 196)])
def test_methods_batch_equal_batch_one(run, records, method, budget):
    same_as_batch_one(run, records, method, Budget(budget))


@pytest.mark.slow
@pytest.mark.parametrize("options",
                         [{"sam2_video_branch": True}, {"allocation": "relevance", "arrangement": "direct"}])
def test_options_batch_equal_batch_one(tmp_path, records, options):
    same_as_batch_one(_runner(tmp_path, **options), records, "vispruner", Budget(81), sizes=(2, 4))
