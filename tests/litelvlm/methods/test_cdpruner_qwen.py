"""CDPruner's Qwen2.5-VL variant on UniPixel (this project's adaptation,
:mod:`litelvlm.methods.cdpruner_qwen`).

Its defining properties: (1) the DPP is the GLaMM code path's (``cdpruner.conditional_dpp``) and, wherever the
official loop keeps K distinct tokens, the official statements' (Theia-4869/CDPruner @9541616,
``llava_arch.py`` L150-188, the similarity, kernel and greedy MAP lines, transcribed below with the relevance
given) on the same kernel inputs: the merged tokens and the LLM-space relevance of
:mod:`litelvlm.llm.relevance`; at every budget 1..N on a small odd image, float32 and bfloat16; (2) it runs
through ``ground`` (kept tokens at the LLM input, raster order; K
= N is the unpruned answer) and is no longer refused on the family.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.llm.context import LLMContext
from litelvlm.llm.relevance import prompt_relevance
from litelvlm.methods import cdpruner as cd
from litelvlm.methods import get_method
from tests.unipixel_tiny import tiny_unipixel  # noqa: E402

MODEL = "unipixel-tiny-random:0"
SIZE = (67, 45)  # an odd image: the processor's minimum pixels give a small merged grid


def official_dpp(image_features, relevance, visual_token_num):
    """Theia-4869/CDPruner @ 9541616c40fcd5625de1cdb8ea6c33c129eb7864, llava/model/llava_arch.py L150-188 with
    the relevance (L157-162) given: (1, N, D) features and (1, N) relevance -> (the kept indices in raster
    order, or None when the loop picked a token twice: the documented deviation 1 of
    :mod:`litelvlm.methods.cdpruner`; the picks in selection order, ``select_idx`` before its sort)."""
    B, N, C = image_features.shape
    device = image_features.device
    image_normalized = image_features / image_features.norm(dim=-1, keepdim=True)  # (B, N, D)
    image_normalized = image_normalized.float()  # (B, N, D)
    similarity = torch.matmul(image_normalized, image_normalized.transpose(1, 2))  # (B, N, N)
    kernel = relevance.unsqueeze(2) * similarity * relevance.unsqueeze(1)  # (B, N, N)
    cis = torch.zeros((visual_token_num, B, N), device=device)  # (T, B, N)
    di2s = torch.diagonal(kernel, dim1=1, dim2=2).clone()  # (B, N)
    select_idx = torch.empty((visual_token_num, B), dtype=torch.long, device=device)  # (T, B)
    for i in range(visual_token_num):
        j = torch.argmax(di2s, dim=-1)
        select_idx[i] = j
        eis = (kernel[torch.arange(B), j]
               - torch.einsum('tb,tbn->bn', cis[:i, torch.arange(B), j], cis[:i])) / torch.sqrt(
            di2s[torch.arange(B), j]).unsqueeze(-1)
        cis[i, :, :] = eis
        di2s -= torch.square(eis)
        di2s[torch.arange(B), j] = -float('inf')
    picks = select_idx[:, 0].clone()
    select_idx = torch.sort(select_idx.t()).values  # (B, T)
    index_masks = torch.zeros(B, N, dtype=torch.bool, device=device)
    index_masks.scatter_(1, select_idx, True)
    kept = index_masks[0].nonzero().flatten()
    return (kept if kept.numel() == visual_token_num else None), picks


def _image(coco128) -> Image.Image:
    return Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB").resize(SIZE)


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def setup(request, coco128):
    pipe = tiny_unipixel(request.param)
    return pipe, pipe.prepare(_image(coco128), ["the person on the left"])


def _inputs(pipe, prep):
    ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
    return ctx, ctx.visual_embeds, prompt_relevance(pipe, prep)


def test_every_budget_keeps_the_official_dpp_tokens(setup):
    """Every budget 1..N: the official kept tokens wherever its loop keeps K distinct ones.
    ``visual_token_num`` only sizes the official loop (and ``cis``, whose unwritten rows are never read), so
    its picks at K are the first K of its picks at N: one official run at N gives every budget's kept set;
    ours at K is checked to be the first K of ours at N at sampled budgets here, at every budget in the slow
    test."""
    pipe, prep = setup
    spec = pipe.spec("cdpruner")
    assert spec.backbone == "qwen2.5-vl" and spec.stage.name == "llm-input" and not spec.uses_clip
    with torch.no_grad():
        ctx, visual, relevance = _inputs(pipe, prep)
        n, width = visual.shape
        ours = spec.select(ctx, n).parts["order"]
        _, picks = official_dpp(visual[None], relevance[None], n)
    assert sorted(ours.tolist()) == list(range(n))
    first_repeat = next(k for k in range(1, n + 1) if len(set(picks[:k].tolist())) < k)
    for budget in range(1, first_repeat):
        assert sorted(ours[:budget].tolist()) == sorted(picks[:budget].tolist()), budget
    assert official_dpp(visual[None], relevance[None], first_repeat)[0] is None
    # the tiny model's width (64) bounds the kernel's rank: past it the official loop repeats a token
    assert min(width, n) // 2 < first_repeat <= n, first_repeat
    for budget in (1, 2, 3, first_repeat - 1, first_repeat, n // 2 + 1, n - 1, n):
        sel = spec.select(ctx, budget)
        assert torch.equal(sel.parts["order"], ours[:budget]), budget
        assert torch.equal(sel.indices, cd.conditional_dpp(visual, relevance, budget).indices)
        if budget < first_repeat:
            assert sel.indices.tolist() == official_dpp(visual[None], relevance[None], budget)[0].tolist()


@pytest.mark.slow
def test_every_budget_one_by_one(setup):
    """Every budget 1..N run on its own: the GLaMM path's DPP on the same kernel inputs, and the official
    statements' kept tokens wherever they keep K distinct ones."""
    pipe, prep = setup
    spec = pipe.spec("cdpruner")
    with torch.no_grad():
        ctx, visual, relevance = _inputs(pipe, prep)
        compared = 0
        for budget in range(1, visual.shape[0] + 1):
            sel = spec.select(ctx, budget)
            glamm = cd.conditional_dpp(visual, relevance, budget)
            assert torch.equal(sel.indices, glamm.indices) and torch.equal(sel.parts["order"],
                                                                           glamm.parts["order"])
            assert len(set(sel.indices.tolist())) == budget
            official = official_dpp(visual[None], relevance[None], budget)[0]
            if official is not None:
                assert sel.indices.tolist() == official.tolist(), budget
                compared += 1
    assert compared > visual.shape[1] // 2


def test_the_glamm_entry_point_runs_the_same_dpp():
    """The GLaMM path (CLIP relevance) calls the same conditional DPP on its own relevance."""
    g = torch.Generator().manual_seed(0)
    feats, image_embeds, text_embeds = torch.randn(41, 96, generator=g), torch.randn(41, 32, generator=g), \
        torch.randn(2, 32, generator=g)
    for budget in (1, 7, 41):
        sel = cd.cdpruner_select(feats, image_embeds, text_embeds, budget)
        same = cd.conditional_dpp(feats, cd.relevance_scores(image_embeds, text_embeds), budget)
        assert torch.equal(sel.indices, same.indices) and torch.equal(sel.parts["order"], same.parts["order"])


def test_ground_keeps_the_selection_at_the_llm_input(setup):
    pipe, prep = setup
    assert pipe.method_error("cdpruner") is None and type(pipe).method_error(type(pipe), "cdpruner") is None
    n = pipe.num_visual(prep)
    with torch.no_grad():
        out = pipe.ground(prep, "cdpruner", 9)
        ctx = LLMContext(pipe, prep, pipe.visual_tokens(prep))
        assert out.kept_indices.tolist() == get_method("cdpruner", "qwen2.5-vl").select(
            ctx, 9).indices.tolist()
        assert out.prune_layer == 0 and out.masks.shape[-2:] == prep.image_size
        full = pipe.ground(prep, "cdpruner", n)
        assert full.kept_indices.tolist() == list(range(n))
        if pipe.dtype == torch.float32:  # K = N is the unpruned answer
            torch.testing.assert_close(full.mask_logits, pipe.ground(prep, "none").mask_logits)


def test_the_variant_is_registered_and_described():
    from litelvlm.methods import VARIANTS, variant_names

    assert "cdpruner" in variant_names("qwen2.5-vl")
    assert "this project's adaptation" in VARIANTS[("cdpruner", "qwen2.5-vl")][1]
    assert get_method("cdpruner").reads_clip and get_method("cdpruner").backbone == ""
