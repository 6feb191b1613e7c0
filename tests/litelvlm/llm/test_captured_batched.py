"""A batch under the captured prefill (``litelvlm.llm.captured``, ``--prefill captured``): ``ground_many``'s
right-padded forward runs its decoder layers through the captured segments, one capture per (segment, batch
size, sequence length) with the padded batch's attention mask among the static inputs, and gives the eager
batch's masks, mask logits and [SEG] states bit for bit (dynamo's ``eager`` backend: ``compile-eager``,
``fused-eager``), and each input run alone's masks, as the eager batch does (test_batched.py). FastV prunes
inside the LLM with a forward of its own: its inputs still run one by one, each captured."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.llm.captured import install, uninstall
from litelvlm.lvlm.batched import batch_error, padded_forward
from tests.fixtures.images import batch_prompts

SENTENCES = [["the red thing on the left"], ["a dog"], ["the big cat near the window"]]


def _ground(pipe, preps, runs, alone: bool = False) -> dict:
    with torch.no_grad():
        if alone:
            return {(m, k, *o): [pipe.ground(p, m, k, **dict(o)) for p in preps] for m, k, *o in runs}
        return {(m, k, *o): pipe.ground_many(preps, m, k, sub_batch_bytes=None, **dict(o))
                for m, k, *o in runs}


def _captured(pipe, preps, runs, capture: str) -> tuple[dict, dict]:
    """(outputs of ``ground_many`` per run, {run: the runner's layer calls}) under a captured prefill, after a
    first, capturing, call of each run."""
    torch._dynamo.reset()
    runner = install(pipe.language_model, capture)
    try:
        _ground(pipe, preps, runs)  # the capturing calls
        outs, counts = {}, {}
        for run in runs:
            runner.reset_counts()
            outs |= _ground(pipe, preps, [run])
            counts[run] = (dict(runner.counts), dict(runner.eager))
        return outs, counts
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()


def _assert_batch(pipe, preps, runs, capture: str) -> None:
    """The captured batch equals the eager batch bit for bit and each input alone's masks; a run that can
    share a forward made ONE captured forward of every layer, FastV one per input."""
    eager, alone = _ground(pipe, preps, runs), _ground(pipe, preps, runs, alone=True)
    captured, counts = _captured(pipe, preps, runs, capture)
    layers = len(pipe.language_model.layers)
    for run in runs:
        shared = batch_error(pipe, run[0]) is None
        assert counts[run] == ({"captured": layers * (1 if shared else len(preps))}, {}), (run, counts[run])
        for got, want, one in zip(captured[run], eager[run], alone[run], strict=True):
            assert torch.equal(got.masks, want.masks), run
            assert torch.equal(got.mask_logits, want.mask_logits), run
            assert torch.equal(got.seg_hidden, want.seg_hidden), run
            assert torch.equal(got.kept_indices, want.kept_indices), run
            assert (got.seq_len, got.prune_layer) == (want.seq_len, want.prune_layer), run
            assert torch.equal(got.masks, one.masks) and got.seq_len == one.seq_len, run
            torch.testing.assert_close(got.mask_logits, one.mask_logits, rtol=1e-4, atol=1e-4)
        assert len({o.seq_len for o in captured[run]}) > 1, run  # padded: the lengths differ
    logits = torch.cat([o.mask_logits.flatten() for outs in captured.values() for o in outs])
    assert logits.std() > 0  # the logits compared are no constant


@pytest.fixture(scope="module")
def glamm_preps(tiny_glamm):
    # GLaMM's prompt holds several expressions: the third has two [SEG]s
    return batch_prompts(tiny_glamm, [*SENTENCES[:2], [*SENTENCES[2], "a man"]])


GLAMM_RUNS = [("none", None), ("litelvlm", 8), ("fastv", 8)]
QWEN_RUNS = [("none", None), ("litelvlm", 8), ("fastv", 8, ("layer", 1))]


def test_glamm_batch_under_the_fused_capture_equals_the_eager_batch(tiny_glamm, glamm_preps):
    """GLaMM (the default capture on CUDA): a CLIP-side method's batch, and FastV one by one (``none``'s
    576-token batch under ``-m slow``)."""
    _assert_batch(tiny_glamm, glamm_preps, GLAMM_RUNS[1:], "fused-eager")


def test_unipixel_batch_under_the_stack_compile_equals_the_eager_batch(tiny_unipixel_pipe):
    """An M-RoPE family (positions (3, B, S), N per image): the unpruned and a CLIP-side method's batch."""
    preps = batch_prompts(tiny_unipixel_pipe, SENTENCES)
    _assert_batch(tiny_unipixel_pipe, preps, QWEN_RUNS[:2], "compile-eager")


@pytest.mark.slow
@pytest.mark.parametrize("capture", ["compile-eager", "fused-eager"])
def test_glamm_batches_under_either_capture_equal_the_eager_batch(tiny_glamm, glamm_preps, capture):
    _assert_batch(tiny_glamm, glamm_preps, GLAMM_RUNS, capture)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sa2va-tiny-random:0", "unipixel-tiny-random:0"])
@pytest.mark.parametrize("capture", ["compile-eager", "fused-eager"])
def test_qwen_family_batches_under_either_capture_equal_the_eager_batch(model, capture):
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    _assert_batch(pipe, batch_prompts(pipe, SENTENCES), QWEN_RUNS, capture)


def test_the_captured_prefill_no_longer_keeps_a_batch_apart(tiny_glamm):
    """``batch_error`` names the methods that cannot share a forward, never the prefill; a padded forward of
    3 sequences is one captured forward of every layer, equal to the eager padded forward bit for bit, and a
    new batch size is a new capture."""
    from torch._dynamo.utils import counters

    lm = tiny_glamm.language_model
    gen = torch.Generator().manual_seed(0)
    embeds = [torch.randn(n, lm.config.hidden_size, generator=gen) for n in (7, 5, 9)]
    pos = [torch.arange(int(e.shape[0]))[None] for e in embeds]
    with torch.no_grad():
        want = padded_forward(lm, "tiny", embeds, pos, [None] * 3, "cpu")
        one = padded_forward(lm, "tiny", embeds[:1], pos[:1], [None], "cpu")
    torch._dynamo.reset()
    counters.clear()
    runner = install(lm, "compile-eager")
    try:
        assert batch_error(tiny_glamm, "none") is None and batch_error(tiny_glamm, "litelvlm") is None
        assert "inside the LLM" in batch_error(tiny_glamm, "fastv")
        with torch.no_grad():
            got = padded_forward(lm, "tiny", embeds, pos, [None] * 3, "cpu")
            got_one = padded_forward(lm, "tiny", embeds[:1], pos[:1], [None], "cpu")
        assert runner.counts == {"captured": 2 * len(lm.layers)} and not runner.eager
        assert counters["stats"]["unique_graphs"] == 2  # (3, 9) and (1, 7): one capture each
    finally:
        uninstall(lm)
        torch._dynamo.reset()
    assert torch.equal(got, want) and torch.equal(got_one, one)


@pytest.mark.slow
def test_videoglamm_clip_batch_under_the_captured_prefill_equals_the_eager_batch(tmp_path):
    """VideoGLaMM's clip (eval-video's path, every method through ``ground_many``): two expressions of one
    clip through Phi-3 (its sliding window shorter than the 3380-token prompts) in one captured forward of
    every layer, the eager batch's masks, logits and states bit for bit, for the baseline and a per-frame
    CLIP-side method."""
    from litelvlm.registry.families import load_pipeline
    from litelvlm.video.datasets import load_ref_davis
    from litelvlm.video.synthetic import write_synthetic_videos

    pipe = load_pipeline("videoglamm-tiny-random:0")
    folder = write_synthetic_videos(tmp_path / "syn", videos=1, frames=3, size=(40, 32), seed=0)
    rec = load_ref_davis(folder)[0]
    clip = pipe.prepare_image([np.asarray(rec.frame(i)) for i in range(len(rec.frames))])
    sentences = [rec.sentence, "the small thing at the back on the right"]
    preps = [pipe.with_sentences(clip, [s]) for s in sentences]
    _assert_batch(pipe, preps, [("none", None), ("vispruner", 81)], "compile-eager")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("capture", ["graph", "fused", "compile"])
def test_a_batch_under_the_captured_prefill_on_cuda_matches_the_eager_batch(capture):
    """On CUDA (bfloat16): a batch of 3 under each capture is one captured forward of every layer (its padded
    mask a static input, replayed on a second call without a new capture), with the eager batch's logits
    within bfloat16 rounding and its masks but for pixels whose logit is within that rounding of 0 (as the
    batch-1 test of test_compiled_prefill.py)."""
    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0", device="cuda", dtype=torch.bfloat16)
    preps = batch_prompts(pipe, SENTENCES)
    runs = [("none", None), ("litelvlm", 8)]
    eager = _ground(pipe, preps, runs)
    torch._dynamo.reset()
    runner = install(pipe.language_model, capture)
    try:
        _ground(pipe, preps, runs)  # the capturing calls
        graphs = dict(runner._graphs)
        for run in runs:
            runner.reset_counts()
            got = _ground(pipe, preps, [run])[run]
            assert runner.counts == {"captured": len(pipe.language_model.layers)}, (capture, run)
            for out, want in zip(got, eager[run], strict=True):
                torch.testing.assert_close(out.mask_logits, want.mask_logits, rtol=2e-2, atol=2e-2)
                flipped = out.masks != want.masks
                near = want.mask_logits.float().abs() <= 2e-2 + 2e-2 * out.mask_logits.float().abs()
                assert not (flipped & ~near.reshape(flipped.shape)).any(), (capture, run)
        assert runner._graphs.keys() == graphs.keys()  # replayed: no new capture
    finally:
        uninstall(pipe.language_model)
        torch._dynamo.reset()
