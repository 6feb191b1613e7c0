"""CDPruner against a statement-by-statement transcription of its official code.

The transcription below follows ``LlavaMetaForCausalLM.encode_images`` on plain tensors (batch size 1;
``mm_projector`` an identity or the caller's function; ``visual_token_num`` the budget). The inputs of
``encode_images`` are what ``CLIPVisionTower.forward`` returns: the feature-layer patch tokens, their CLIP
image embeds ``visual_projection(post_layernorm(patches).float())`` and the text embeds of the
instruction's 77-token segments. The pipeline test feeds it the tiny random GLaMM's own projector outputs
and CLIP embeds on a real COCO image.
"""

from __future__ import annotations

import functools

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import cdpruner as cd
from litelvlm.methods import get_method
from litelvlm.methods.select import select

CDPRUNER_COMMIT = "9541616c40fcd5625de1cdb8ea6c33c129eb7864"


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_encode_images(image_features, image_embeds, text_embeds, visual_token_num,
                           mm_projector=lambda x: x):
    """Theia-4869/CDPruner @ 9541616c40fcd5625de1cdb8ea6c33c129eb7864, llava/model/llava_arch.py L141-188
    (``encode_images``), with ``get_vision_tower()(images, texts=texts)`` (L142) replaced by its three
    outputs and ``self.get_model().mm_projector`` by ``mm_projector``. Returns ``(image_features,
    index_masks, select_idx)``; ``select_idx`` (B, T) is returned too, for the repeat check."""
    B, N, C = image_features.shape
    device = image_features.device
    index_masks = torch.ones(B, N, dtype=torch.bool, device=device)

    image_features = mm_projector(image_features)

    # [CDPruner] Calculate cosine similarity
    image_normalized = image_features / image_features.norm(dim=-1, keepdim=True)  # (B, N, D)
    image_normalized = image_normalized.float()  # (B, N, D)
    similarity = torch.matmul(image_normalized, image_normalized.transpose(1, 2))  # (B, N, N)

    # [CDPruner] Calculate query relevance
    image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)  # (B, N, C)
    text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)  # (M, C)
    relevance = torch.matmul(image_embeds, text_embeds.t())  # (B, N, M)
    relevance = (-relevance).mean(dim=-1)  # (B, N)
    relevance = (relevance - relevance.min() + 1e-6) / (relevance.max() - relevance.min())  # (B, N)

    # [CDPruner] Construct kernel matrix
    kernel = relevance.unsqueeze(2) * similarity * relevance.unsqueeze(1)  # (B, N, N)

    # [CDPruner] Fast MAP inference of conditional DPP
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

    select_idx = torch.sort(select_idx.t()).values  # (B, T)
    index_masks = torch.zeros(B, N, dtype=torch.bool, device=device)
    index_masks.scatter_(1, select_idx, True)

    return image_features, index_masks, select_idx


def official_kept(image_features, image_embeds, text_embeds, budget, mm_projector=lambda x: x):
    """The official kept indices (raster order: ``index_masks`` of batch element 0), or None when its loop
    picked a token twice (fewer than K tokens kept: deviation 1)."""
    _, masks, select_idx = official_encode_images(image_features, image_embeds, text_embeds, budget,
                                                  mm_projector)
    kept = masks[0].nonzero().flatten()
    if kept.numel() < budget:
        return None
    assert kept.tolist() == select_idx[0].tolist()
    return kept


# ----------------------------------------------------------------------------------------------
# Random inputs
# ----------------------------------------------------------------------------------------------

@functools.cache
def random_inputs(n: int, seed: int, width: int = 96, embed_dim: int = 48, texts: int = 2,
                  dtype: torch.dtype = torch.float32):
    """(projector outputs (1, N, D) in ``dtype``, CLIP image embeds (1, N, C) and text embeds (M, C) in
    float32, as the official tower returns them). D >= N unless the rank is meant to run out."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(8, width, generator=g)
    region = torch.randint(0, 8, (n,), generator=g)
    feats = (centers[region] + 0.5 * torch.randn(n, width, generator=g))[None].to(dtype)
    image_embeds = torch.randn(1, n, embed_dim, generator=g)
    text_embeds = torch.randn(texts, embed_dim, generator=g)
    return feats, image_embeds, text_embeds


def sweep(feats, image_embeds, text_embeds, budgets) -> int:
    """Compare at each budget; returns how many budgets the official loop kept K distinct tokens at."""
    compared = 0
    for budget in budgets:
        official = official_kept(feats, image_embeds, text_embeds, budget)
        if official is None:  # the official loop repeated a token: the documented deviation
            continue
        sel = cd.cdpruner_select(feats[0], image_embeds[0], text_embeds, budget)
        assert sel.indices.tolist() == official.tolist(), budget
        compared += 1
    return compared


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_budget_matches_official_n64(seed, dtype):
    """N = 64: every budget 1..64 keeps the official tokens (float32, and bfloat16 projector outputs)."""
    feats, image_embeds, text_embeds = random_inputs(64, seed, dtype=dtype)
    assert sweep(feats, image_embeds, text_embeds, range(1, 65)) == 64


def test_sampled_budgets_match_official_n576():
    """N = 576 (LLaVA-1.5's grid), budgets 1, 2, 3, 97, 288 and N; a projector width above N (full rank)."""
    feats, image_embeds, text_embeds = random_inputs(576, 2, width=640, embed_dim=64, texts=3)
    budgets = (1, 2, 3, 97, 288, 576)
    assert sweep(feats, image_embeds, text_embeds, budgets) == len(budgets)


def test_bfloat16_n576_matches_official():
    feats, image_embeds, text_embeds = random_inputs(576, 3, width=640, embed_dim=64, texts=1,
                                                     dtype=torch.bfloat16)
    assert sweep(feats, image_embeds, text_embeds, (96,)) == 1  # every budget: the slow test


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_budget_matches_official_n576(dtype):
    """N = 576: every budget 1..576."""
    feats, image_embeds, text_embeds = random_inputs(576, 4, width=640, embed_dim=64, texts=2, dtype=dtype)
    assert sweep(feats, image_embeds, text_embeds, range(1, 577)) == 576


def test_projector_is_applied_first():
    """The similarity is on the projector OUTPUTS: a non-linear projector transcribed as official."""
    feats, image_embeds, text_embeds = random_inputs(64, 5, width=32)
    g = torch.Generator().manual_seed(0)
    w = torch.randn(128, 32, generator=g)

    def projector(x):
        return torch.nn.functional.gelu(x @ w.t())

    for budget in (8, 32, 64):
        official = official_kept(feats, image_embeds, text_embeds, budget, projector)
        assert cd.cdpruner_select(projector(feats[0]), image_embeds[0], text_embeds,
                                  budget).indices.tolist() == (
            official.tolist())


def test_rank_exhausted_official_repeats_ours_keeps_k_distinct():
    """Deviation 1: projector width 16 < N = 64 (rank 16): past the rank the official loop repeats tokens
    (its mask keeps fewer than K); the port keeps K distinct tokens and the same first picks."""
    feats, image_embeds, text_embeds = random_inputs(64, 6, width=16)
    _, masks, select_idx = official_encode_images(feats, image_embeds, text_embeds, 48)
    assert int(masks.sum()) < 48
    sel = cd.cdpruner_select(feats[0], image_embeds[0], text_embeds, 48)
    assert len(set(sel.indices.tolist())) == 48
    assert sel.indices.tolist() == sorted(sel.parts["order"].tolist())
    official16 = official_kept(feats, image_embeds, text_embeds, 16)
    assert official16 is not None
    assert sorted(sel.parts["order"][:16].tolist()) == official16.tolist()


def test_relevance_min_max_and_kernel():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0]])
    r = cd.relevance_scores(image, text)  # -cos: -1, 0, -0.6 -> (r - min + 1e-6) / (max - min)
    torch.testing.assert_close(r, torch.tensor([1e-6, 1 + 1e-6, 0.4 + 1e-6]))
    k = cd.kernel_matrix(cd.similarity_matrix(image), r)
    torch.testing.assert_close(k[1, 2], r[1] * 0.8 * r[2])


def test_edge_budgets_and_registration():
    feats, image_embeds, text_embeds = random_inputs(64, 0)
    with pytest.raises(LiteLVLMError, match="1 <= K"):
        cd.cdpruner_select(feats[0], image_embeds[0], text_embeds, 0)
    with pytest.raises(LiteLVLMError, match="1 <= K"):
        cd.cdpruner_select(feats[0], image_embeds[0], text_embeds, 65)
    spec = get_method("cdpruner")
    assert spec.stage.name == "llm-input" and spec.select is cd.cdpruner
    assert spec.needs_text and not spec.host_sync


def test_runs_on_meta():
    """No value is read in Python: the selection runs on the meta device (the FLOPs count)."""
    sel = cd.cdpruner_select(torch.empty(64, 32, device="meta"), torch.empty(64, 16, device="meta"),
                             torch.empty(2, 16, device="meta"), 8)
    assert sel.indices.shape == (8,) and sel.indices.device.type == "meta"


# ----------------------------------------------------------------------------------------------
# In the pruned GLaMM pipeline (tiny random model, a real COCO image)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe(tiny_glamm):
    return tiny_glamm


@pytest.fixture(scope="module")
def prep(tiny_glamm_prep):
    return tiny_glamm_prep


def _pipeline_official_inputs(pipe, prep):
    """The pipeline's own projector outputs (1, N, h) and CLIP image (1, N, C) and text (T, C) embeds."""
    full = pipe.visual_tokens(prep).detach()
    image_embeds = prep.vision.projected(prep.feature_layer).float()
    return full[None], image_embeds, prep.text.text_embeds.float()


def test_pipeline_every_budget_matches_official(pipe, prep):
    """Every budget 1..N through the method on the pipeline's LLM context: the official kept tokens at every
    budget below the official loop's first repeat K0; from K0 on the official mask keeps fewer than K tokens
    (the tiny model's projector width, 64, bounds the kernel's rank: deviation 1) and the port keeps K
    distinct. ``visual_token_num`` only sizes the official loop (and ``cis``, whose unwritten rows are never
    read), so its picks at K are the first K at any larger budget: it repeats at every K >= K0."""
    from litelvlm.llm.context import LLMContext

    assert len(prep.text.texts) == 2
    with torch.no_grad():
        feats, image_embeds, text_embeds = _pipeline_official_inputs(pipe, prep)
        n, width = feats.shape[1:]
        ctx = LLMContext(pipe, prep, feats[0])
        spec = get_method("cdpruner")
        first_repeat = None
        for budget in range(1, n + 1):
            official = official_kept(feats, image_embeds, text_embeds, budget)
            if official is None:
                first_repeat = budget
                break
            assert spec.select(ctx, budget).indices.tolist() == official.tolist(), budget
        assert first_repeat is not None and first_repeat > width
        assert official_kept(feats, image_embeds, text_embeds, n) is None
        for budget in (first_repeat, first_repeat + 1, n // 2, n):
            sel = spec.select(ctx, budget)
            assert len(set(sel.indices.tolist())) == budget
            assert sel.indices.tolist() == sorted(sel.parts["order"].tolist())
        assert spec.select(ctx, n).indices.tolist() == list(range(n))


def test_pipeline_ground_matches_official(pipe, prep):
    with torch.no_grad():
        feats, image_embeds, text_embeds = _pipeline_official_inputs(pipe, prep)
        n = feats.shape[1]
        base = pipe.ground(prep, "none")
        for budget in (32,):
            out = pipe.ground(prep, "cdpruner", budget)
            official = official_kept(feats, image_embeds, text_embeds, budget)
            assert out.kept_indices.tolist() == official.tolist()
            assert out.prune_layer == 0 and out.masks.shape == base.masks.shape
        out = pipe.ground(prep, "cdpruner", n)
        assert out.kept_indices.tolist() == list(range(n))
        torch.testing.assert_close(out.mask_logits, base.mask_logits)


def test_no_clip_only_run(prep):
    """CDPruner needs the projector outputs: the CLIP-side entry point refuses it."""
    with pytest.raises(LiteLVLMError, match="cdpruner. acts at the LLM.s input; use the grounding pipeline"):
        select("cdpruner", prep.selector_inputs(), 64)
