"""VisionZip, VisPruner, PruMerge and PruMerge+ on Qwen2.5-VL (``unipixel-tiny-random:0``): this project's
adaptation.

No official Qwen2.5-VL code of these methods could be read (the mirrored snapshots dvlab-research/VisionZip @
3151f6d and Theia-4869/VisPruner @ aefa01a have none: VisPruner's ``llava/model/language_model/llava_qwen.py``
is LLaVA's Qwen2 *LLM* wrapper, not Qwen2.5-VL; VisionZip's later ``Qwen2_5_VL`` folder is not mirrored). So
these tests check (1) the shared stand-in (:mod:`litelvlm.qwen_vision.cls_stand_in`) against an independent
computation: VScan's Qwen score and the last full-attention block's keys, captured by hooks and averaged over
each merge unit by hand in the tower's window order; (2) each method's defining properties at every budget
1..N on a small odd-sized image; (3) that the official LLaVA-1.5 statements, transcribed in
``tests/litelvlm/methods/test_vispruner_visionzip_official.py`` (VisPruner ``llava_arch.py`` L141-183,
VisionZip ``clip_encoder.py`` L42-85) and ``tests/litelvlm/methods/test_prumerge_official.py`` (LLaVA-PruMerge
``clip_encoder.py`` L12-47, L117-171), give the same tokens and merged features (1e-5, float32) when fed the
stand-in in place of the [CLS] row and the keys (a zero [CLS] row prepended where they expect one); (4) that
they run through ``ground``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError  # noqa: E402
from litelvlm.methods import (
    get_method,  # noqa: E402
    prumerge_qwen,  # noqa: E402
)
from litelvlm.methods.prumerge import EXTRA_INDEX  # noqa: E402
from litelvlm.methods.visionzip import split_budget  # noqa: E402
from litelvlm.qwen_vision.cls_stand_in import StandIn, stand_in  # noqa: E402
from tests.litelvlm.methods.test_prumerge_official import official_merge, outlier_dectection  # noqa: E402
from tests.litelvlm.methods.test_vispruner_visionzip_official import (  # noqa: E402
    official_visionzip,
    official_vispruner,
)

MODEL = "unipixel-tiny-random:0"
METHODS = ("visionzip", "vispruner", "prumerge", "prumerge+")
SIZE = (45, 61)                   # the small image: every budget 1..N
SIZES = [(29, 101), (131, 97)]    # other odd sizes: a few budgets (every budget in the slow test)
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def pipe(tiny_unipixel_pipe):
    return tiny_unipixel_pipe


def _ctx(pipe, size, seed=0):
    img = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))
    return pipe.context(pipe.prepare(img, ["the cup"]))


@pytest.fixture(scope="module")
def small(pipe):
    return _ctx(pipe, SIZE)


def _spec(name):
    return get_method(name, "qwen2.5-vl")


def test_the_family_offers_the_four_variants(pipe):
    cls = type(pipe)
    for name in METHODS:
        spec = _spec(name)
        assert cls.method_error(cls, name) is None and pipe.spec(name) is spec
        assert spec.stage.name == "llm-input" and spec.backbone == "qwen2.5-vl" and not spec.uses_clip
        assert "this project's adaptation" in spec.description
        assert get_method(name).stage.name == "clip"  # GLaMM's: the official code on CLIP's grid, unchanged


def _hooked_keys(vision, block):
    """(P, heads, d) keys of ``block`` from hooks on the tower: its qkv projection's output and the RoPE it
    gets."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    attn = vision.visual.blocks[block].attn
    got = {}
    h1 = attn.register_forward_pre_hook(lambda m, a, kw: got.update(rope=kw["position_embeddings"]),
                                        with_kwargs=True)
    h2 = attn.qkv.register_forward_hook(lambda m, a, out: got.update(qkv=out))
    try:
        vision.visual(vision.pixel_values, grid_thw=vision.grid_thw)
    finally:
        h1.remove()
        h2.remove()
    q, k, _ = got["qkv"].reshape(got["qkv"].shape[0], 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    return apply_rotary_pos_emb_vision(q, k, *got["rope"])[1]


@pytest.mark.parametrize("size", [SIZE, *SIZES])
def test_stand_in_is_vscans_score_and_the_merge_units_keys(pipe, size):
    from litelvlm.qwen_vision.vit_attention import received_attention

    ctx = _ctx(pipe, size)
    s = stand_in(ctx)
    vision = pipe.vision(ctx.prepared)
    blocks = len(vision.visual.blocks)
    # the last block, a full-attention one
    assert s.block == blocks - 1 == vision.visual.fullatt_block_indexes[-1]
    assert torch.equal(s.score,
                       received_attention(vision.visual, vision.pixel_values, vision.grid_thw, block=-1))
    keys = _hooked_keys(vision, s.block)                      # (P, heads, d) in the tower's window order
    order = vision.window_order()                            # LLM index of each merged token, window order
    want = torch.empty(ctx.num_visual, *keys.shape[1:], dtype=keys.dtype)
    for p, token in enumerate(order.tolist()):
        want[token] = keys[4 * p:4 * p + 4].mean(0)
    torch.testing.assert_close(s.keys, want, rtol=1e-5, atol=1e-6)
    assert s.score.shape == (ctx.num_visual,) and float(s.weights().sum()) == pytest.approx(1.0, abs=1e-5)
    # one tower pass
    assert stand_in(ctx).score is not None and ("qwen-stand-in", None) in ctx.prepared.clip_cache


def _with_cls(x):
    """(1, 1 + N, W): a zero [CLS] row, then ``x``'s rows: the shape the official statements expect."""
    return torch.cat([torch.zeros(1, x.shape[-1], dtype=x.dtype), x])[None]


def _cls_attention(score):
    """(1, 1, 1 + N, 1 + N): one head whose [CLS] row over the patches is the stand-in score."""
    n = score.shape[0]
    att = torch.zeros(1, 1, n + 1, n + 1, dtype=score.dtype)
    att[0, 0, 0, 1:] = score
    return att


def check_visionzip(ctx, budget):
    s, feats = stand_in(ctx), ctx.visual_embeds
    sel = _spec("visionzip").select(ctx, budget)
    d, c = split_budget(budget)
    assert len(sel) == budget and sel.features.shape == (budget, feats.shape[1])
    top = torch.sort(torch.topk(s.score, d).indices).values
    # dominant: the top D, in the LLM's order
    assert torch.equal(sel.parts["dominant"], top)
    torch.testing.assert_close(sel.features[:d], feats[top], rtol=0, atol=0)
    if c == 0:  # the official code divides by zero (R // C): no contextual token (GLaMM's deviation 1)
        assert sel.parts["contextual"].numel() == 0
        return
    hs = _with_cls(feats)
    want, sources = official_visionzip([hs, hs], [_cls_attention(s.score)] * 2, _with_cls(s.head_mean_keys()),
                                       d + 1, c)
    assert sources[0] == -1 and torch.equal(sel.indices, sources[1:])
    torch.testing.assert_close(sel.features, want[0, 1:], rtol=1e-5, atol=1e-5)


def check_vispruner(ctx, budget):
    s, feats = stand_in(ctx), ctx.visual_embeds
    sel = _spec("vispruner").select(ctx, budget)
    assert len(sel) == budget == len(set(sel.indices.tolist())) and torch.equal(sel.indices,
                                                                                sel.indices.sort().values)
    important = torch.topk(s.score, budget // 2).indices
    assert set(sel.parts["important"].tolist()) == set(important.tolist())
    hs = _with_cls(feats)
    try:
        want = official_vispruner([hs, hs], [_cls_attention(s.score)] * 2, budget, 0.5, odd_fix=True)
    except RuntimeError:  # fewer than 2r residual tokens: the official expand raises (GLaMM's deviation 2)
        return False
    assert torch.equal(sel.indices, want)
    return True


def _pad(x, width):
    """Zero columns up to ``width``: the official merge gathers keys with the features' width; zeros change no
    cosine and no sum."""
    return torch.nn.functional.pad(x, (0, width - x.shape[-1]))


def official_prumerge_features(s: StandIn, feats, idx):
    """The official merge statements (L117-171) on the merged tokens with the stand-in weights and full-width
    keys."""
    width = max(feats.shape[1], s.full_width_keys().shape[1])
    out = official_merge(_pad(feats, width)[None], s.weights()[None],
                         _with_cls(_pad(s.full_width_keys(), width)), idx[None])
    return out[0, :, :feats.shape[1]]


def check_prumerge(ctx, budget, plus, official=True):
    s, feats = stand_in(ctx), ctx.visual_embeds
    sel = _spec("prumerge+" if plus else "prumerge").select(ctx, budget)
    kept = budget - 1
    n_top = min(kept, math.ceil(kept / 4)) if plus else kept
    assert len(sel) == budget and int(sel.indices[-1]) == EXTRA_INDEX and sel.features.shape == (
        budget, feats.shape[1])
    # descending weight order
    assert torch.equal(sel.parts["outliers"], torch.topk(s.weights(), n_top).indices)
    spatial = sel.parts["spatial"]
    assert spatial.numel() == kept - n_top and torch.equal(spatial, spatial.sort().values)
    assert not set(spatial.tolist()) & set(sel.parts["outliers"].tolist())
    idx = torch.cat([sel.parts["outliers"], spatial])
    assert torch.equal(sel.indices[:-1], idx)
    if official:  # the official merge loops over the kept tokens: every budget in the slow tests
        torch.testing.assert_close(sel.features, official_prumerge_features(s, feats, idx), rtol=1e-5,
                                   atol=1e-5)


def _sweep(ctx, budgets, merged=None):
    """Every check at ``budgets``; PruMerge's official merge at ``merged`` only (None: at every one)."""
    official_vispruner_runs = 0
    for k in budgets:
        check_visionzip(ctx, k)
        official_vispruner_runs += check_vispruner(ctx, k)
        check_prumerge(ctx, k, False, merged is None or k in merged)
        check_prumerge(ctx, k, True, merged is None or k in merged)
    assert official_vispruner_runs >= len(budgets) // 2  # the official loop ran at most budgets


def test_every_budget_on_a_small_image(small):
    n = small.num_visual
    _sweep(small, range(1, n + 1), merged={1, 2, 3, 5, 33, 34, n // 2, n - 1, n})


@slow
def test_every_budget_on_a_small_image_every_merge(small):
    _sweep(small, range(1, small.num_visual + 1))


@pytest.mark.parametrize("size", SIZES)
def test_other_odd_sizes(pipe, size):
    ctx = _ctx(pipe, size)
    n = ctx.num_visual
    _sweep(ctx, sorted({1, 2, 3, 17, n // 2, n - 1, n}))


@slow
@pytest.mark.parametrize("size", SIZES)
def test_other_odd_sizes_every_budget(pipe, size):
    ctx = _ctx(pipe, size)
    _sweep(ctx, range(1, ctx.num_visual + 1))


def test_the_shared_glamm_functions_on_the_stand_in(small):
    """The variants call the GLaMM modules' selection functions on the stand-in (the rules live once)."""
    from litelvlm.methods import prumerge, visionzip, vispruner

    s, feats, k = stand_in(small), small.visual_embeds, 37
    dom, rest = visionzip.dominant_split(s.score, split_budget(k)[0])
    targets, merged = visionzip.contextual_tokens(feats, s.head_mean_keys(), rest, split_budget(k)[1])
    sel = _spec("visionzip").select(small, k)
    assert (torch.equal(sel.indices, torch.cat([dom, targets]))
            and torch.equal(sel.features, torch.cat([feats[dom], merged])))
    imp, div = vispruner.important_and_diverse(s.score, feats, k)
    assert torch.equal(_spec("vispruner").select(small, k).indices, torch.cat([imp, div]).sort().values)
    top, spatial = prumerge.fixed_kept(s.weights(), k, True)
    want = prumerge.merged_selection(feats, s.weights(), s.full_width_keys(), top, spatial)
    got = _spec("prumerge+").select(small, k)
    assert torch.equal(got.indices, want.indices) and torch.equal(got.features, want.features)


def _designed(ctx, seed=0):
    """A stand-in with IQR outliers (the tiny random tower's attention has none): a few tokens with 20x the
    score."""
    s = stand_in(ctx)
    g = torch.Generator().manual_seed(seed)
    score = torch.rand(ctx.num_visual, generator=g) + 0.5
    score[torch.randperm(ctx.num_visual, generator=g)[:9]] *= 20
    return StandIn(score=score.to(s.score.dtype), keys=s.keys, block=s.block)


@pytest.mark.parametrize("plus", [False, True])
def test_adaptive_mode_is_the_official_outlier_rule(small, monkeypatch, plus):
    name = "prumerge+" if plus else "prumerge"
    designed = _designed(small)
    monkeypatch.setattr(prumerge_qwen, "stand_in", lambda ctx, block=None: designed)
    w, n = designed.weights(), small.num_visual
    ratio = outlier_dectection(w[None])
    top = torch.topk(w, int(n * ratio)).indices
    assert top.numel() == 9
    step = max(1, int(int(1 / ratio) / 3))  # PruMerge+'s samples: arange(0, N - 1, step) minus the outliers
    seq = torch.arange(0, n - 1, step)
    spatial = seq[~torch.isin(seq, top)] if plus else top[:0]
    k = prumerge_qwen.adaptive_budget(small, plus)
    assert k == top.numel() + spatial.numel() + 1
    sel = _spec(name).select(small, k, adaptive=True)
    assert torch.equal(sel.indices[:-1], torch.cat([top, spatial]))
    torch.testing.assert_close(sel.features,
                               official_prumerge_features(designed, small.visual_embeds, sel.indices[:-1]),
                               rtol=1e-5, atol=1e-5)
    assert torch.equal(_spec(name).select(small, None).indices, sel.indices)  # no budget: adaptive
    with pytest.raises(LiteLVLMError, match="adaptive=True keeps"):
        _spec(name).select(small, k + 1, adaptive=True)


@pytest.mark.parametrize("name", METHODS)
def test_they_run_through_ground(pipe, small, name):
    n = small.num_visual
    full = pipe.ground(small.prepared, "none")
    for k in (1, 7, n):
        out = pipe.ground(small.prepared, name, k)
        assert len(out.kept_indices) == k and out.seq_len == full.seq_len - n + k
        assert out.masks.shape == full.masks.shape
        assert out.position_rule == ("keep" if name == "vispruner" else "renumber")
    if name != "vispruner":
        with pytest.raises(LiteLVLMError, match="no single visual token"):
            pipe.ground(small.prepared, name, 7, positions="keep")


def test_importance_reads_their_stand_in_score(pipe, small):
    """``importance --method-signals`` compares the score each variant ranks by (``Method.ranks``): the
    stand-in's."""
    from analysis.importance.signals import SignalKey, method_signals

    got = method_signals(pipe, small.prepared, METHODS)
    s = stand_in(small)
    for name in METHODS:  # PruMerge ranks by the weights: the score divided by its sum
        want = s.weights() if name.startswith("prumerge") else s.score
        assert torch.equal(got[SignalKey(f"method:{name}")], want.float())
