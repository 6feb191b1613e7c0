"""Per-frame pruning of VideoGLaMM's CLIP context stream (``litelvlm.videoglamm.pruning``, this project's
adaptation: no official code prunes VideoGLaMM). Checks its defining properties on random weights: the trace
is the stream VideoGLaMM reads, ``none`` is the official projection bit for bit, each frame's selection is the
method's own selection on that frame, the arrangements meet the square-only pooling as documented, and the
refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods.select import select
from litelvlm.pruning import SelectorInputs
from litelvlm.videoglamm import pruning as VP
from litelvlm.videoglamm.checkpoint import build_videoglamm
from litelvlm.videoglamm.inference import prepare_clip
from litelvlm.videoglamm.model import apply_adaptive_avg_pooling


@pytest.fixture(scope="module")
def setup():
    from litelvlm.clip import load_clip

    model, _ = build_videoglamm("tiny", seed=0)
    clip = VP.pair_clip(model, load_clip(VP.default_clip("videoglamm-tiny-random:0"), "hf"))
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(5)]
    prep = prepare_clip(model, frames)
    trace = VP.trace_context(model, clip, prep)
    return model, clip, prep, trace, VP.clip_text_trace(clip, "the red square")


def test_trace_is_the_stream_videoglamm_reads_and_none_is_official(setup):
    model, clip, prep, trace, text = setup
    assert trace.grid == (24, 24) and trace.hidden_states[0].shape[0] == 16
    assert torch.equal(trace.hidden_states[-2][:, 1:], prep.tokens.clip)
    for arrangement in ("pool", "pool-min"):
        out = VP.prune_clip(model, prep, trace, text, "none", arrangement=arrangement)
        assert torch.equal(out.visual, prep.tokens.visual) and out.budgets == [576] * 16
    # the paired backend reads VideoGLaMM's tower: q/k/v of a block are VideoGLaMM's layers' projections
    layer = model.clip.encoder.layers[-1]
    q, _, _ = trace.qkv(-1)
    assert torch.equal(q, layer.self_attn.q_proj(layer.layer_norm1(trace.hidden_states[-2])))


def _paper_budgets(setup, methods):
    model, clip, prep, trace, text = setup
    h = model.preset.llm_hidden
    for method in methods:
        for k in (196, 81):
            out = VP.prune_clip(model, prep, trace, text, method, k, seed=3)
            assert out.visual.shape == (16 * 144 + 16 * 64, h) and out.context_tokens == [144] * 16
            assert [len(s) for s in out.selections] == [k] * 16
            assert torch.isfinite(out.visual).all()


def test_per_frame_methods_listed():
    methods = VP.per_frame_methods()
    assert methods[0] == "vispruner" and {"litelvlm", "random", "visionzip", "hiprune",
                                          "tome"} <= set(methods)
    assert not {"none", "fastv", "divprune"} & set(methods)


def test_merging_methods_at_the_paper_budgets(setup):
    _paper_budgets(setup, ["visionzip", "prumerge"])


@pytest.mark.slow
def test_every_per_frame_method_at_the_paper_budgets(setup):
    _paper_budgets(setup, VP.per_frame_methods())


def test_each_frame_gets_the_methods_own_selection(setup):
    """Frame f's selection is ``select`` on the whole trace at image_index f (seed + f): the slicing changes
    nothing; the context tokens are the official projection and pooling of the kept tokens as a 14 x 14
    grid."""
    model, clip, prep, trace, text = setup
    for method in ("vispruner", "litelvlm", "random"):
        out = VP.prune_clip(model, prep, trace, text, method, 196, seed=7)
        for f in (0, 9, 15):
            ref = select(method, SelectorInputs(vision=trace, text=text, image_index=f, seed=7 + f), 196)
            assert torch.equal(out.selections[f].indices, ref.indices)
    out = VP.prune_clip(model, prep, trace, text, "vispruner", 196)
    for f in (0, 15):
        kept = trace.patches(-2)[f][out.selections[f].indices]
        want = apply_adaptive_avg_pooling(model.image_mm_projector(kept[None]), (12, 12))[0]
        assert torch.allclose(out.visual[f * 144:(f + 1) * 144], want, atol=1e-6)
    assert torch.equal(out.visual[16 * 144:], prep.tokens.visual[16 * 144:])   # InternVideo2 untouched


def test_random_frames_draw_differently(setup):
    model, clip, prep, trace, text = setup
    out = VP.prune_clip(model, prep, trace, text, "random", 81, seed=0)
    assert not torch.equal(out.selections[0].indices, out.selections[1].indices)
    again = VP.prune_clip(model, prep, trace, text, "random", 81, seed=0)
    assert all(torch.equal(a.indices, b.indices) for a,
               b in zip(out.selections, again.selections, strict=True))


def test_arrangements_and_allocation(setup):
    model, clip, prep, trace, text = setup
    h = model.preset.llm_hidden
    assert VP.prune_clip(model, prep, trace, text, "litelvlm", 81, arrangement="pool-min").visual.shape == \
        (16 * 81 + 1024, h)
    assert VP.prune_clip(model, prep, trace, text, "litelvlm", 196, arrangement="pool-min").visual.shape == \
        (16 * 144 + 1024, h)
    out = VP.prune_clip(model, prep, trace, text, "litelvlm", 120, arrangement="direct")
    assert out.visual.shape == (16 * 120 + 1024, h)
    alloc = [196] * 8 + [81] * 8
    out = VP.prune_clip(model, prep, trace, text, "vispruner", allocation=alloc, arrangement="pool-min")
    assert out.budgets == alloc and out.context_tokens == [144] * 8 + [81] * 8
    uniform = VP.prune_clip(model, prep, trace, text, "vispruner", 196)
    assert torch.allclose(out.visual[:8 * 144], uniform.visual[:8 * 144], atol=1e-6)


def test_refusals(setup):
    model, clip, prep, trace, text = setup
    for name in ("fastv", "divprune", "sparsevlm"):
        assert name in VP.frame_method_error(name) and "whole video" in VP.frame_method_error(name)
        with pytest.raises(LiteLVLMError, match=name):
            VP.prune_clip(model, prep, trace, text, name, 81)
    assert VP.frame_method_error("none") is None and VP.frame_method_error("vispruner") is None
    for name in ("ipcv", "flowcut"):  # inside the tower: no claim of acting on the LLM's tokens
        assert "acts inside the vision tower, not on one frame" in VP.frame_method_error(name)
        assert "LLM" not in VP.frame_method_error(name)
    assert "acts inside the vision tower and inside the LLM" in VP.frame_method_error("ipcv+fastv")
    with pytest.raises(LiteLVLMError, match="square"):
        VP.prune_clip(model, prep, trace, text, "vispruner", 120)
    with pytest.raises(LiteLVLMError, match="16 budgets"):
        VP.prune_clip(model, prep, trace, text, "vispruner", allocation=[81] * 3)
    with pytest.raises(LiteLVLMError, match="1..576"):
        VP.prune_clip(model, prep, trace, text, "vispruner", 577, arrangement="direct")
    with pytest.raises(LiteLVLMError, match="arrangement"):
        VP.prune_clip(model, prep, trace, text, "vispruner", 81, arrangement="crop")
    with pytest.raises(LiteLVLMError, match="clip_text"):
        VP.clip_text_trace(clip, "x", "caption")


def test_clip_text_and_default_clip(setup):
    clip = setup[1]
    assert VP.clip_text_trace(clip, "The Red Square").texts == ["The Red Square"]
    assert VP.clip_text_trace(clip, "The Red Square", "question").texts == [
        "What is the red square in this video? Please respond with segmentation masks."]
    assert VP.default_clip("videoglamm-tiny-random:2") == "tiny336-random:2"
    assert VP.default_clip("videoglamm-random") == "vit-l-14-336-random:0"
    assert VP.default_clip("/some/folder") == "openai/clip-vit-large-patch14-336"


def test_pair_clip_refuses_another_tower(setup):
    from litelvlm.clip import load_clip

    with pytest.raises(LiteLVLMError, match="differs"):
        VP.pair_clip(setup[0], load_clip("tiny-random:0", "hf"))


def test_pair_clip_refuses_an_open_clip_backend(setup):
    from litelvlm.clip import load_clip

    clip = load_clip(VP.default_clip("videoglamm-tiny-random:0"), "open_clip")
    with pytest.raises(LiteLVLMError, match=r"pairs a transformers CLIP model .*CLIP 'tiny336-random:0' is "
                                            r"open_clip's"):
        VP.pair_clip(setup[0], clip)


def test_keeping_every_patch_is_the_official_stream_in_bfloat16():
    """A selecting method keeping all 576 patches of every frame in raster order gives the LLM VideoGLaMM's
    own visual tokens bit for bit, in bfloat16 too (the projector reads the trace's layer -2 slice, as
    ``project`` does, not a gathered copy whose bfloat16 GEMM rounds differently: seen at the real size)."""
    from litelvlm.clip import load_clip

    model, _ = build_videoglamm("tiny", seed=0, dtype=torch.bfloat16)
    clip = VP.pair_clip(model,
                        load_clip(VP.default_clip("videoglamm-tiny-random:0"), "hf", dtype=torch.bfloat16))
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(3)]
    prep = prepare_clip(model, frames)
    trace = VP.trace_context(model, clip, prep)
    text = VP.clip_text_trace(clip, "the red square")
    for method in ("litelvlm", "random"):
        out = VP.prune_clip(model, prep, trace, text, method, 576)
        assert all(torch.equal(s.indices, torch.arange(576)) for s in out.selections)
        assert out.visual.dtype == torch.bfloat16 and torch.equal(out.visual, prep.tokens.visual)
