"""HiPrune against a statement-by-statement transcription of its official LLaVA-1.5 code, at every budget.

Danielement321/HiPrune @ 6e83a12, ``LLaVA/llava/model/llava_arch.py`` ``encode_images`` L140-184, on the
attentions its vision tower returns (``clip_encoder.py`` L36-64: ``output_attentions=True`` of transformers
4.x's eager ``CLIPAttention``, transcribed in ``test_official_vispruner_visionzip.official_clip_attention``).
The tower is a random transformers CLIP on LLaVA-1.5's 24x24 grid (577 tokens), so the official hard-coded
row width 24 and last index 575 apply as they are.
"""

from __future__ import annotations

import functools
import os

import pytest
import torch

from litelvlm.clip.traces import VisionTrace
from litelvlm.methods.hiprune import anchors_and_buffers
from litelvlm.methods.select import select
from litelvlm.pruning import SelectorInputs
from tests.litelvlm.methods.test_vispruner_visionzip_official import official_clip_attention

HIPRUNE_COMMIT = "6e83a12"
LAYERS, GRID = 10, 24


def official_hiprune(attentions, visual_token_num: int, alpha: float, object_layer: int,
                     select_layer: int = -2):
    """``encode_images`` L143-181 (the projector, L183, left out): the patch indices the LLM receives through
    ``index_masks`` (raster order). ``HIPRUNE_RETENTION`` is ``visual_token_num`` (B = 1), ``HIPRUNE_ALPHA``
    ``alpha``, ``HIPRUNE_OBJECT_LAYER`` ``object_layer``; ``.cuda()`` dropped; the features' shape is taken
    from the attentions (B, N = 1, 576)."""
    os.environ["HIPRUNE_RETENTION"], os.environ["HIPRUNE_ALPHA"] = str(visual_token_num), str(alpha)
    os.environ["HIPRUNE_OBJECT_LAYER"] = str(object_layer)
    all_image_attentions = attentions
    B, N = 1, attentions[0].shape[-1] - 1
    device = attentions[0].device
    visual_token_num = int(int(os.environ['HIPRUNE_RETENTION']) / B)
    deep_attention = all_image_attentions[select_layer]
    deep_attention = deep_attention.mean(dim=1).mean(dim=1)[:, 1:]  # Global attention
    shallow_attention = all_image_attentions[int(os.environ['HIPRUNE_OBJECT_LAYER']) - 1]
    shallow_attention = shallow_attention.mean(dim=1).mean(dim=1)[:, 1:]  # Global attention
    shallow_token_num = round(visual_token_num * float(os.environ['HIPRUNE_ALPHA']) / 5)
    index_masks = []
    for i in range(B):
        shallow_token_indices = torch.topk(shallow_attention[i].unsqueeze(0), k=shallow_token_num, dim=1)[1]
        shallow_token_indices = torch.cat([shallow_token_indices,
                                           shallow_token_indices - 1,
                                           shallow_token_indices + 1,
                                           shallow_token_indices - 24,
                                           shallow_token_indices + 24], dim=1)
        shallow_token_indices = shallow_token_indices.clamp(0, 575)
        shallow_token_indices = torch.unique(shallow_token_indices, sorted=False).unsqueeze(0)
        deep_token_num = visual_token_num - shallow_token_indices.shape[1]
        available_index_mask = torch.zeros(1, N, dtype=torch.bool, device=device)
        available_index_mask.scatter_(1, shallow_token_indices, 1)
        deep_attention[i] -= available_index_mask.int().squeeze()
        deep_token_indices = torch.topk(deep_attention[i].unsqueeze(0), k=deep_token_num, dim=1)[1]
        token_indices = torch.cat([shallow_token_indices, deep_token_indices], dim=1)
        token_indices = torch.sort(token_indices, dim=1)[0]
        index_mask = torch.zeros(1, N, dtype=torch.bool, device=device)
        index_mask.scatter_(1, token_indices, True)
        index_masks.append(index_mask)
    index_masks = torch.cat(index_masks, dim=0)
    return torch.arange(N)[index_masks[0]]


class Tower:
    """A random transformers CLIP vision tower on the 24x24 grid as a CLIP backend; the official attentions of
    every block are the transformers 4.x eager statements on the block's own modules."""

    def __init__(self, dtype: torch.dtype, seed: int = 0):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        torch.manual_seed(seed)
        cfg = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=LAYERS,
                               num_attention_heads=4, image_size=14 * GRID, patch_size=14)
        self.model = CLIPVisionModelWithProjection(cfg).eval().to(dtype)
        for layer in self.model.vision_model.encoder.layers:  # peaked attention rows, as CLIP's
            layer.self_attn.q_proj.weight.data.mul_(4.0)
        self.vision_heads = 4
        pixels = torch.randn(1, 3, 14 * GRID, 14 * GRID,
                             generator=torch.Generator().manual_seed(seed)).to(dtype)
        with torch.no_grad():
            self.hidden_states = tuple(
                self.model(pixel_values=pixels, output_hidden_states=True).hidden_states)
            layers = self.model.vision_model.encoder.layers
            self.attentions = tuple(
                official_clip_attention(layer.self_attn, layer.layer_norm1(self.hidden_states[b]))[0]
                                    for b, layer in enumerate(layers))

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        return layer.self_attn.q_proj(x), layer.self_attn.k_proj(x), layer.self_attn.v_proj(x)

    def inputs(self) -> SelectorInputs:
        return SelectorInputs(
            VisionTrace(hidden_states=self.hidden_states, grid=(GRID, GRID), num_prefix_tokens=1,
                                          backend=self))


@functools.cache
def tower(dtype: torch.dtype) -> Tower:
    return Tower(dtype)


@pytest.mark.parametrize("budgets", [(1, 2, 3, 7, 64, 128, 191, 192, 193, 288, 574, 575, 576),
                                     pytest.param(range(1, 577), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_budget_matches_the_official_code(dtype, budgets):
    """K = 1..576 at the official defaults (alpha 0.1, object layer 9), in float32 and bfloat16: the same kept
    patches in the same (raster) order (the default suite: the edges and the paper's budgets; every K:
    slow)."""
    t = tower(dtype)
    inputs = t.inputs()
    for budget in budgets:
        sel = select("hiprune", inputs, budget, object_layer=9)
        expected = official_hiprune([a.clone() for a in t.attentions], budget, 0.1, 9)
        assert sel.indices.tolist() == expected.tolist(), budget
        assert len(sel) == budget


@pytest.mark.parametrize("alpha,object_layer", [(0.3, 5), (1.0, 1), (0.5, LAYERS)])
def test_other_settings_match_the_official_code(alpha, object_layer):
    t = tower(torch.float32)
    for budget in (1, 7, 64, 128, 192, 575, 576):
        sel = select("hiprune", t.inputs(), budget, alpha=alpha, object_layer=object_layer)
        assert sel.indices.tolist() == official_hiprune([a.clone() for a in t.attentions], budget, alpha,
                                                        object_layer).tolist(), (alpha, object_layer, budget)


def test_buffers_follow_the_official_index_arithmetic():
    """Neighbours are flat-index offsets (a row's first patch takes the previous row's last as its left one)
    clamped to the grid; on another grid the row offset is its width (this project's adaptation)."""
    attention = torch.zeros(48)
    attention[24] = 1.0  # the first patch of the second row of a 24-wide grid
    # 24 + 24 clamped to 47
    assert sorted(anchors_and_buffers(attention, 1, 24).tolist()) == [0, 23, 24, 25, 47]
    attention = torch.zeros(64)
    attention[9] = 1.0  # an 8x8 grid: the row offset is 8
    assert sorted(anchors_and_buffers(attention, 1, 8).tolist()) == [1, 8, 9, 10, 17]


def test_the_default_object_layer_is_the_official_one_at_its_depth():
    """9 on LLaVA-1.5's 24-layer tower (the official default); the same relative depth on others."""
    from litelvlm.methods.hiprune import default_object_layer

    assert default_object_layer(24) == 9 and default_object_layer(12) == 4 and default_object_layer(2) == 1
    assert default_object_layer(LAYERS) == 4
    t = tower(torch.float32)
    assert torch.equal(select("hiprune", t.inputs(), 64).indices,
                       select("hiprune", t.inputs(), 64, object_layer=4).indices)
