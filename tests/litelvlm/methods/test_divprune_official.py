"""DivPrune against a statement-by-statement transcription of its official code.

The transcription below follows ``LlavaMetaForCausalLM.pairwise_cosine_similarity``, ``DivPrune`` and
the ``LAYER_INDEX == '0'`` branch of ``prepare_inputs_labels_for_multimodal`` on plain tensors. The
inputs have LLaVA-1.5's shapes: CLIP ViT-L/14-336 layer -2 hidden states (577 tokens = CLS + 24x24
patches, width 1024), LLaVA's ``mlp2x_gelu`` projector (1024 -> 4096 -> 4096, Vicuna-7B's width),
and a ``new_input_embeds`` of 35 system-prompt rows, the 576 visual rows and some text rows. The
pipeline test runs the method in the tiny random GLaMM on a real COCO image.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import divprune as dp
from litelvlm.methods import get_method
from litelvlm.methods.select import select

DIVPRUNE_COMMIT = "799e2d950aa01ba7860907f5a6d86061f885dca6"

GRID, WIDTH, LLM_WIDTH, SYS_TOKEN_LEN, TEXT_LEN = 24, 1024, 4096, 35, 20
N = GRID * GRID


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_pairwise_cosine_similarity(matrix):
    """vbdi/divprune @ 799e2d950aa01ba7860907f5a6d86061f885dca6, LLaVA/llava/model/llava_arch.py L147-150."""
    norm_matrix = matrix / matrix.norm(dim=1, keepdim=True)
    cosine_similarity = torch.mm(norm_matrix, norm_matrix.t())
    return cosine_similarity


def official_divprune(visual_feature_vectors, image_feature_length, cosine_matrix=None, threshold_ratio=0.1):
    """vbdi/divprune @ 799e2d950aa01ba7860907f5a6d86061f885dca6, LLaVA/llava/model/llava_arch.py L152-171."""
    threshold_terms = int(round(threshold_ratio * image_feature_length))
    if cosine_matrix is None:
        cosine_matrix = 1.0 - (official_pairwise_cosine_similarity(visual_feature_vectors))

    s = torch.empty(threshold_terms, dtype=torch.long, device=visual_feature_vectors.device)
    for i in range(threshold_terms):
        if i == 0:
            m2 = cosine_matrix
        else:
            m2 = torch.index_select(cosine_matrix, 0,
                                    torch.index_select(s, 0, torch.arange(0, i, device=cosine_matrix.device)))

        if i == 0:
            scores = torch.topk(m2, 2, dim=0, largest=False).values[1, :]  # for distance
        else:
            scores = torch.min(m2, dim=0).values  # for distance

        phrase_to_add_idx = torch.argmax(scores)
        s[i] = phrase_to_add_idx
    return s, cosine_matrix


def official_prune(new_input_embeds, image_features, diverse_ratio, SYS_TOKEN_LEN=SYS_TOKEN_LEN):
    """The ``LAYER_INDEX == '0'`` branch for LLaVA-1.5 (tensor ``image_features``, batch size 1).

    vbdi/divprune @ 799e2d950aa01ba7860907f5a6d86061f885dca6, LLaVA/llava/model/llava_arch.py L365-385
    (``position_ids``/``attention_mask`` are None in generation and left out). ``SYS_TOKEN_LEN`` is the
    official constant 35 unless the caller's prompt puts the image elsewhere (the GLaMM test).
    Returns ``keep_indexs``, the pruned ``new_input_embeds`` and the selection order ``s``.
    """
    cosine_matrix = None
    img_feature_len = image_features.shape[1]
    visual_tokens = new_input_embeds[0][SYS_TOKEN_LEN:SYS_TOKEN_LEN + img_feature_len]
    selected_visual_tokens, cosine_matrix = official_divprune(visual_tokens, img_feature_len, cosine_matrix,
                                                              threshold_ratio=diverse_ratio)
    order = selected_visual_tokens.clone()
    selected_visual_tokens += SYS_TOKEN_LEN
    keep_indexs = torch.cat(
        (torch.arange(SYS_TOKEN_LEN, device=new_input_embeds.device), selected_visual_tokens,
                             torch.arange(SYS_TOKEN_LEN + img_feature_len, new_input_embeds.shape[1],
                                          device=new_input_embeds.device)))
    keep_indexs = keep_indexs.sort().values
    new_input_embeds = new_input_embeds[:, keep_indexs]
    return keep_indexs, new_input_embeds, order


# ----------------------------------------------------------------------------------------------
# LLaVA-1.5-shaped inputs
# ----------------------------------------------------------------------------------------------

@functools.cache
def llava_inputs(seed: int, clustered: bool, dtype: torch.dtype = torch.float32):
    """(image_features (1, N, 4096), new_input_embeds (1, 35 + N + 20, 4096)) as LLaVA-1.5 builds them.

    ``clustered``: the CLIP states are a smooth per-region pattern plus noise, so many tokens are
    near-duplicates (as in real images); otherwise i.i.d. Gaussian states.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    hidden = torch.randn(1, 1 + N, WIDTH, generator=g)
    if clustered:
        centers = torch.randn(12, WIDTH, generator=g) * 3
        region = torch.randint(0, 12, (GRID // 4, GRID // 4), generator=g)
        region = region.repeat_interleave(4, 0).repeat_interleave(4, 1).flatten()
        hidden[0, 1:] = centers[region] + 0.3 * hidden[0, 1:]
    w1 = torch.randn(LLM_WIDTH, WIDTH, generator=g) * WIDTH ** -0.5  # mlp2x_gelu: Linear, GELU, Linear
    w2 = torch.randn(LLM_WIDTH, LLM_WIDTH, generator=g) * LLM_WIDTH ** -0.5
    b1, b2 = torch.randn(2, LLM_WIDTH, generator=g) * 0.1
    with torch.no_grad():  # feature_select 'patch', then mm_projector (float32, then the model's dtype)
        image_features = nn.functional.linear(nn.functional.gelu(nn.functional.linear(hidden[:, 1:], w1, b1)),
                                              w2, b2).to(dtype)
        system = torch.randn(1, SYS_TOKEN_LEN, LLM_WIDTH, generator=g).to(dtype) * 0.02
        text = torch.randn(1, TEXT_LEN, LLM_WIDTH, generator=g).to(dtype) * 0.02
    return image_features, torch.cat([system, image_features, text], dim=1)


def ratio_for(budget: int) -> float:
    ratio = budget / N
    assert dp.budget_from_ratio(ratio, N) == budget
    return ratio


# ----------------------------------------------------------------------------------------------
# Selection
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,clustered,budget",
                         [(0, False, 56), (0, True, 64), (1, True, 128), (1, False, 192),
                                                   (0, True, 192)])
def test_divprune_matches_official(seed, clustered, budget):
    image_features, new_input_embeds = llava_inputs(seed, clustered)
    keep, pruned, order = official_prune(new_input_embeds, image_features, ratio_for(budget))
    sel = dp.divprune_select(image_features[0], budget)
    assert sel.parts["order"].tolist() == order.tolist()  # same picks, same order
    assert sel.indices.tolist() == sorted(order.tolist())  # raster order, as keep_indexs.sort()
    visual = keep[(keep >= SYS_TOKEN_LEN) & (keep < SYS_TOKEN_LEN + N)] - SYS_TOKEN_LEN
    assert sel.indices.tolist() == visual.tolist()
    # the LLM input: system rows, the kept visual rows in raster order, text rows
    ours = torch.cat([new_input_embeds[0, :SYS_TOKEN_LEN], image_features[0, sel.indices],
                      new_input_embeds[0, SYS_TOKEN_LEN + N:]])
    torch.testing.assert_close(ours, pruned[0], atol=1e-5, rtol=1e-5)


def test_official_default_ratio_and_rounding():
    assert dp.RATIO == 0.098 and dp.budget_from_ratio() == 56  # run_Divprune.sh: SUBSET_RATIO=0.098
    assert dp.budget_from_ratio(0.625, 4) == 2 and dp.budget_from_ratio(0.875, 4) == 4  # half to even
    image_features, new_input_embeds = llava_inputs(0, True)
    keep, _, _ = official_prune(new_input_embeds, image_features, dp.RATIO)
    assert keep.numel() == SYS_TOKEN_LEN + 56 + TEXT_LEN
    assert dp.divprune_select(image_features[0], dp.budget_from_ratio()).indices.tolist() == (
        keep[SYS_TOKEN_LEN:SYS_TOKEN_LEN + 56] - SYS_TOKEN_LEN).tolist()


@pytest.mark.slow
@pytest.mark.parametrize("clustered", [False, True])
def test_all_tokens_at_budget_n(clustered):
    """K = N: the official loop picks every token once (no near-duplicate beats a self-distance here)."""
    image_features, new_input_embeds = llava_inputs(1, clustered)
    _, pruned, order = official_prune(new_input_embeds, image_features, 1.0)
    sel = dp.divprune_select(image_features[0], N)
    assert sel.parts["order"].tolist() == order.tolist()
    assert sel.indices.tolist() == list(range(N))
    assert torch.equal(pruned, new_input_embeds)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_official(dtype):
    """fp16 is the official evaluation dtype (bfloat16 GLaMM's): same calls, same rounding, same picks."""
    image_features, new_input_embeds = llava_inputs(0, True, dtype)
    for budget in (64,):
        _, _, order = official_prune(new_input_embeds, image_features, ratio_for(budget))
        sel = dp.divprune_select(image_features[0], budget)
        assert len(set(order.tolist())) == budget  # no repeat: deviation 1 is inert
        assert sel.parts["order"].tolist() == order.tolist()


def test_duplicates_official_repeats_a_token_ours_keeps_k_distinct():
    """Deviation 1: with only 10 distinct embeddings (e.g. a padded image) the official loop picks an
    already-selected token and then repeats it; the port keeps K distinct tokens, same first picks."""
    g = torch.Generator().manual_seed(0)
    distinct = torch.randn(10, LLM_WIDTH, generator=g)
    embeds = distinct[torch.randint(0, 10, (N,), generator=g)]
    embeds[torch.arange(10) * 7] = distinct  # every embedding present
    official, _ = official_divprune(embeds, N, threshold_ratio=ratio_for(32))
    assert len(set(official.tolist())) < 32
    sel = dp.divprune_select(embeds, 32)
    first_repeat = next(i for i, t in enumerate(official.tolist()) if t in official.tolist()[:i])
    assert sel.parts["order"][:first_repeat].tolist() == official[:first_repeat].tolist()
    assert len(set(sel.indices.tolist())) == 32


def test_first_pick_is_the_most_isolated_token():
    embeds = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.05]])
    sel = dp.divprune_select(embeds, 3)
    assert sel.parts["order"][0] == 4  # nearest neighbour farthest away
    assert sel.parts["order"].tolist() == official_divprune(embeds, 5, threshold_ratio=0.6)[0].tolist()


def test_edge_budgets_and_registration():
    assert dp.divprune_select(torch.randn(1, 8), 1).indices.tolist() == [0]  # deviation 4
    with pytest.raises(LiteLVLMError, match="1 <= K"):
        dp.divprune_select(torch.randn(6, 8), 0)
    spec = get_method("divprune")
    assert spec.stage.name == "llm-input" and spec.select is dp.divprune


# ----------------------------------------------------------------------------------------------
# In the pruned GLaMM pipeline (tiny random model, a real COCO image)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def prep(tiny_glamm_prep):
    return tiny_glamm_prep


def test_pipeline_budgets_match_official(pipe, prep):
    from litelvlm.glamm.prompts import image_offset

    with torch.no_grad():
        full = pipe.visual_tokens(prep)
        embeds = pipe.sequence_embeds(prep, full)
        base = pipe.ground(prep, "none")
        start = image_offset(prep.input_ids)
        for budget in (576, 192, 128, 64):
            out = pipe.ground(prep, "divprune", budget)
            keep, pruned, _ = official_prune(embeds, full[None], ratio_for(budget), SYS_TOKEN_LEN=start)
            assert out.kept_indices.tolist() == (keep[start:start + budget] - start).tolist()
            assert out.prune_layer == 0 and out.seq_len == embeds.shape[1] - (N - budget)
            if budget == 64:  # the official pruned sequence through the same LLM
                final = pipe.final_hidden(pruned, torch.arange(pruned.shape[1])[None])
                torch.testing.assert_close(out.seg_hidden, final[0, out.seg_positions], atol=1e-5, rtol=1e-5)
            assert out.masks.shape == base.masks.shape
            if budget == N:
                torch.testing.assert_close(out.mask_logits, base.mask_logits)


def test_no_clip_only_run(prep):
    """DivPrune needs the projector outputs: the CLIP-side entry point refuses it."""
    with pytest.raises(LiteLVLMError, match="divprune. acts at the LLM.s input; use the grounding pipeline"):
        select("divprune", prep.selector_inputs(), 64)


def test_pipeline_selects_on_given_visual_embeds(pipe, prep):
    """``visual_embeds`` (e.g. a leaf for captum) are what DivPrune measures, and stay differentiable."""
    full = pipe.visual_tokens(prep).detach()
    leaf = full.clone().requires_grad_()
    out = pipe.ground(prep, "divprune", 64, visual_embeds=leaf)
    assert out.kept_indices.tolist() == dp.divprune_select(full, 64).indices.tolist()
    out.seg_hidden.sum().backward()
    touched = leaf.grad.abs().sum(-1) > 0
    assert touched.nonzero().flatten().tolist() == out.kept_indices.tolist()


def _sweep(clustered: bool, budgets) -> int:
    """The official loop's first K picks do not depend on its length (step i reads only the picks before
    it): it runs once, to the largest budget, and each budget K is compared with its first K picks (run
    directly too for the small budgets)."""
    image_features, new_input_embeds = llava_inputs(2, clustered)
    budgets = list(budgets)
    _, _, longest = official_prune(new_input_embeds, image_features, ratio_for(max(budgets)))
    compared = 0
    for budget in budgets:
        ratio = ratio_for(budget)
        order = longest[:int(round(ratio * N))]  # the official threshold_terms
        if budget <= 64:
            assert torch.equal(official_prune(new_input_embeds, image_features, ratio)[2], order), budget
        if len(set(order.tolist())) < budget:  # the official loop repeated a token: the documented deviation
            continue
        sel = dp.divprune_select(image_features[0], budget)
        assert sel.parts["order"].tolist() == order.tolist(), budget
        compared += 1
    return compared


@pytest.mark.parametrize("clustered", [False, True])
def test_sampled_budgets_match_official(clustered):
    """Budgets 1, 2, 3, every 37th and N-1, N: the same picks in the same order as the official loop."""
    budgets = sorted({1, 2, 3, N - 1, N, *range(1, N + 1, 37)})
    assert _sweep(clustered, budgets) >= len(budgets) - 2


@pytest.mark.slow
@pytest.mark.parametrize("clustered", [False, True])
def test_every_budget_matches_official(clustered):
    """Every budget 1..N (clustered features make near-ties, where a repeated official pick would show)."""
    assert _sweep(clustered, range(1, N + 1)) >= N - 10
