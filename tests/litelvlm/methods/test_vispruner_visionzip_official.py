"""VisPruner and VisionZip against statement-by-statement transcriptions of their official code.

The transcriptions below follow the official functions line by line on plain tensors
(batch dimension kept, as in the originals). The inputs have LLaVA-1.5's shapes
(CLIP ViT-L/14-336: 577 tokens = CLS + 24x24 patches, width 1024, 16 heads): a hand-built
VisionTrace of random hidden states whose block -2 has a real pre-norm and q/k/v
projections, so that the official inputs (``attentions[-2]``, ``hidden_states[-2]``,
the head-averaged keys) and the project's trace are computed from the same tensors.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litelvlm.clip.traces import VisionTrace
from litelvlm.methods.select import select, visual_features
from litelvlm.methods.visionzip import CLS_INDEX, split_budget
from litelvlm.pruning import SelectorInputs, scores

VISPRUNER_COMMIT = "aefa01adc7c7ce6334e880c88225e90cede760d1"
VISIONZIP_COMMIT = "3151f6df4fca36a4cd1c985e5956e725b1f9ad02"

GRID, WIDTH, HEADS, LAYERS = 24, 1024, 16, 3
SEEDS = (0, 1, 2)


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def official_clip_attention(attn: nn.Module, hidden_states: torch.Tensor):
    """CLIPAttention_forward as patched by VisionZip (its ``attn_weights_reshaped`` are also what
    transformers' eager CLIPAttention returns as ``attentions``), up to the softmax, plus the
    metric it returns. dvlab-research/VisionZip @ 3151f6df4fca36a4cd1c985e5956e725b1f9ad02,
    visionzip/utils.py L19-33, L61, L68, L89 (no masks in the vision tower, L41-57 skipped).
    ``attn`` has ``q_proj``, ``k_proj``, ``num_heads``, ``head_dim``, ``scale``; ``_shape`` is
    transformers' ``tensor.view(bsz, seq_len, num_heads, head_dim).transpose(1, 2)``."""
    def _shape(tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, attn.num_heads, attn.head_dim).transpose(1, 2).contiguous()

    bsz, tgt_len, embed_dim = hidden_states.size()
    query_states = attn.q_proj(hidden_states) * attn.scale
    key_states = _shape(attn.k_proj(hidden_states), -1, bsz)
    raw_key_states = key_states.clone()
    proj_shape = (bsz * attn.num_heads, -1, attn.head_dim)
    query_states = _shape(query_states, tgt_len, bsz).view(*proj_shape)
    key_states = key_states.view(*proj_shape)
    src_len = key_states.size(1)
    attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
    attn_weights = nn.functional.softmax(attn_weights, dim=-1)
    attn_weights_reshaped = attn_weights.view(bsz, attn.num_heads, tgt_len, src_len)
    return attn_weights_reshaped, raw_key_states.mean(1)


def official_vispruner(hidden_states, attentions, visual_token_num, important_ratio, select_layer=-2,
                       odd_fix=False):
    """VisPruner's feature selection and ``encode_images`` mask, for LLaVA-1.5 ('patch' features).

    Theia-4869/VisPruner @ aefa01adc7c7ce6334e880c88225e90cede760d1:
    llava/model/multimodal_encoder/clip_encoder.py L36-52 (``feature_select``) and
    llava/model/llava_arch.py L141-183 (``encode_images``; the projector, L185, is left out).
    Returns the patch indices the LLM receives: ``image_features[index_masks]`` (L272), i.e.
    the mask's True positions in raster order.

    ``odd_fix=True`` replaces ``R // 2 - r`` in the ``expand`` of L174 by the number of distinct
    indices (``ceil(R/2) - r``): the project's extension for an odd residual, where the
    official statement raises a shape mismatch. Nothing else changes.
    """
    # clip_encoder.py L37-43 (select_feature == 'patch')
    image_features = hidden_states[select_layer]
    image_attentions = attentions[select_layer]
    image_features = image_features[:, 1:]
    image_attentions = image_attentions[:, :, 0, 1:]

    # llava_arch.py L144-183
    B, N, C = image_features.shape
    device = image_features.device
    index_masks = torch.ones(B, N, dtype=torch.bool, device=device)

    important_token_num = int(visual_token_num * important_ratio)
    diverse_token_num = visual_token_num - important_token_num

    image_attentions = image_attentions.mean(dim=1)
    token_indices = image_attentions.argsort(dim=-1, descending=True)
    important_indices = token_indices[:, :important_token_num]
    residual_indices = token_indices[:, important_token_num:]

    image_normalized = image_features / image_features.norm(dim=-1, keepdim=True)
    while diverse_token_num > 0:
        R = residual_indices.shape[1]
        r = min(8, R - diverse_token_num)
        if r <= 0:
            break

        residual_tokens = image_normalized[torch.arange(B).unsqueeze(-1).expand(-1, R), residual_indices]
        a, b = residual_tokens[..., ::2, :], residual_tokens[..., 1::2, :]
        scores = a @ b.transpose(-1, -2)
        scores = scores.max(dim=-1).values

        distinct_indices = scores.argsort(dim=-1, descending=True)[:, r:]
        width = distinct_indices.shape[1] if odd_fix else R // 2 - r
        residual_indices = torch.cat([
            residual_indices[..., ::2][torch.arange(B).unsqueeze(-1).expand(-1, width), distinct_indices],
            residual_indices[..., 1::2]
        ], dim=-1)

    if diverse_token_num > 0:
        selected_indices = torch.cat([important_indices, residual_indices], dim=-1)
    else:
        selected_indices = important_indices
    index_masks = torch.zeros(B, N, dtype=torch.bool, device=device)
    index_masks.scatter_(1, selected_indices, True)
    return index_masks[0].nonzero().squeeze(1)  # image_features[index_masks] (llava_arch.py L272)


def official_visionzip(hidden_states_all, attentions, metric, dominant, contextual):
    """VisionZip's vision-tower forward (tensor input), for ``visionzip(model, dominant, contextual)``.

    dvlab-research/VisionZip @ 3151f6df4fca36a4cd1c985e5956e725b1f9ad02: visionzip/main.py L5-7
    (``dominant_num = dominant - 1``) and visionzip/clip_encoder.py L42-85. ``metric`` is
    ``layers[-2].metric`` (utils.py L122-124, L191: only block -2 has r = 1), the head-averaged
    keys of :func:`official_clip_attention`.

    Returns ``hidden_states_save`` (what the projector gets) and, for the comparison only,
    the patch sources of its rows: -1 for CLS, the dominant patches, the target patches
    (derived from ``mask`` and ``target_indices``; no effect on the result).
    """
    dominant_num = dominant - 1
    contextual_num = contextual

    attn_weights = attentions[-2]
    hidden_states = hidden_states_all[-2]

    cls_idx = 0
    cls_attention = attn_weights[:, :, cls_idx, cls_idx + 1:]
    cls_attention_sum = cls_attention.sum(dim=1)
    topk_indices = cls_attention_sum.topk(dominant_num, dim=1).indices + 1
    all_indices = torch.cat([torch.zeros((hidden_states.shape[0], 1), dtype=topk_indices.dtype,
                                         device=topk_indices.device), topk_indices], dim=1)

    mask = torch.ones_like(hidden_states[:, :, 0], dtype=torch.bool, device=metric.device).scatter_(
        1, all_indices, False)
    dominant_tokens = hidden_states.masked_select(~mask.unsqueeze(-1)).view(
        hidden_states.shape[0], dominant_num + 1, hidden_states.shape[2])

    metric_filtered = metric[mask].view(hidden_states.shape[0], hidden_states.shape[1] - (dominant_num + 1),
                                        metric.shape[2])
    hidden_states_filtered = hidden_states.masked_select(mask.unsqueeze(-1)).view(
        hidden_states.shape[0], hidden_states.shape[1] - (dominant_num + 1), hidden_states.shape[2])
    metric_normalized = metric_filtered / metric_filtered.norm(dim=-1, keepdim=True)

    step = max(1, metric_normalized.shape[1] // contextual_num)
    target_indices = torch.arange(0, metric_normalized.shape[1], step, device=metric_normalized.device)[
        :contextual_num]
    target_tokens = metric_normalized[:, target_indices, :]

    tokens_to_merge = metric_normalized[:, ~torch.isin(torch.arange(metric_normalized.shape[1],
                                                                    device=metric_normalized.device),
                                                       target_indices), :]
    similarity = torch.bmm(tokens_to_merge, target_tokens.transpose(1, 2))
    assign_one_hot = torch.zeros(tokens_to_merge.shape[0], tokens_to_merge.shape[1], contextual_num,
                                 dtype=hidden_states_filtered.dtype, device=metric_normalized.device)
    assign_one_hot.scatter_(2, similarity.argmax(dim=2).unsqueeze(-1), 1)
    counts = assign_one_hot.sum(dim=1).clamp(min=1).unsqueeze(-1)
    hidden_to_merge = hidden_states_filtered[:, ~torch.isin(torch.arange(hidden_states_filtered.shape[1],
                                                                         device=hidden_states_filtered.device)
                                                            , target_indices), :]
    aggregated_hidden = torch.bmm(assign_one_hot.transpose(1, 2), hidden_to_merge) / counts
    target_hidden = hidden_states_filtered[:, target_indices, :]

    contextual_tokens = target_hidden + aggregated_hidden

    hidden_states_save = torch.cat([dominant_tokens, contextual_tokens], dim=1)

    # for the comparison: which sequence positions the rows come from (CLS -> -1, patch p -> p)
    kept_positions = (~mask[0]).nonzero().squeeze(1)
    target_positions = mask[0].nonzero().squeeze(1)[target_indices]
    sources = torch.cat([kept_positions, target_positions]) - 1
    return hidden_states_save, sources


# ----------------------------------------------------------------------------------------------
# LLaVA-1.5-shaped inputs
# ----------------------------------------------------------------------------------------------

class Attention(nn.Module):
    """The parts of transformers' CLIPAttention the official code reads."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.num_heads, self.head_dim = heads, width // heads
        self.scale = self.head_dim ** -0.5
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(width, width) for _ in range(3))


@dataclass
class OfficialAttentionTrace(VisionTrace):
    """A VisionTrace that returns given attention rows (the selectors then read bit-identical inputs)."""

    attentions: tuple[torch.Tensor, ...] = ()

    def cls_attention(self, block: int = -1) -> torch.Tensor:
        return self.attentions[block][:, :, 0, self.num_prefix_tokens:]


class RandomTower:
    """A stand-in CLIP backend: random hidden states for every layer, a real pre-norm + q/k/v per block."""

    name = "random-vit-l-14-336"
    vision_heads = HEADS

    def __init__(self, seed: int):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.norms = [nn.LayerNorm(WIDTH) for _ in range(LAYERS)]
        self.attns = [Attention(WIDTH, HEADS) for _ in range(LAYERS)]
        for norm in self.norms:
            nn.init.normal_(norm.weight, 1.0, 0.2)
            nn.init.normal_(norm.bias, 0.0, 0.2)
        for a in self.attns:  # sharper attention than the default init: CLIP's CLS rows are peaked
            a.q_proj.weight.data.mul_(3.0)
        s = 1 + GRID * GRID
        self.hidden_states = tuple(torch.randn(1, s, WIDTH, generator=g) * 2 for _ in range(LAYERS + 1))

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        x = self.norms[block](hidden)
        a = self.attns[block]
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)

    def trace(self) -> VisionTrace:
        return VisionTrace(hidden_states=self.hidden_states, grid=(GRID, GRID), num_prefix_tokens=1,
                           backend=self)

    def official_attention_trace(self, attentions) -> VisionTrace:
        """The same trace, except that its CLS attention rows ARE the official ``attentions``."""
        return OfficialAttentionTrace(hidden_states=self.hidden_states, grid=(GRID, GRID),
                                      num_prefix_tokens=1, backend=self, attentions=attentions)

    @torch.no_grad()
    def official_outputs(self):
        """(hidden_states, attentions, metric of block -2) as transformers + VisionZip's patches give
        them; only block -2's attention is computed (the other entries are None: never read)."""
        block = LAYERS - 2
        w, metric = official_clip_attention(self.attns[block], self.norms[block](self.hidden_states[block]))
        attentions = tuple(w if b == block else None for b in range(LAYERS))
        return self.hidden_states, attentions, metric


@functools.cache
def make_tower(seed: int, dtype: torch.dtype = torch.float32):
    """(tower, selector inputs, official inputs) for one seed; the selectors read the official
    attention rows (see :func:`test_attention_inputs_agree`)."""
    t = RandomTower(seed)
    if dtype != torch.float32:  # the official code runs in the tower's dtype (fp16 in LLaVA's eval)
        for m in (*t.norms, *t.attns):
            m.to(dtype)
        t.hidden_states = tuple(h.to(dtype) for h in t.hidden_states)
    official = t.official_outputs()
    return t, SelectorInputs(t.official_attention_trace(official[1])), official


# ----------------------------------------------------------------------------------------------
# VisPruner
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_attention_inputs_agree(seed):
    """The project's own CLS attention row is the official ``attentions[-2][:, :, 0, 1:]`` up to
    float32 rounding, and its head-averaged block -2 keys are VisionZip's metric. The comparisons
    below feed both sides the official rows: a rounding-level swap of two near-equal attentions
    reorders VisPruner's residual and so changes its even/odd split, which would make an exact
    comparison test the rounding of two attention implementations instead of the selection."""
    t, _, (hs, attns, metric) = make_tower(seed)
    own = SelectorInputs(t.trace())
    torch.testing.assert_close(own.vision.cls_attention(-2), attns[-2][:, :, 0, 1:], atol=1e-8, rtol=1e-5)
    torch.testing.assert_close(own.patches(), hs[-2][0, 1:])
    _, k, _ = own.vision.qkv(-2)
    torch.testing.assert_close(k.reshape(1, 577, HEADS, -1).mean(2), metric)


@pytest.mark.parametrize("seed", SEEDS[:2])
@pytest.mark.parametrize("budget", [64, 128, 192])
def test_vispruner_matches_official(seed, budget):
    _, inputs, (hs, attns, _) = make_tower(seed)
    sel = select("vispruner", inputs, budget)
    expected = official_vispruner(hs, attns, budget, 0.5)
    assert sel.indices.tolist() == expected.tolist()
    assert sorted(torch.cat([sel.parts["important"], sel.parts["diverse"]]).tolist()) == expected.tolist()
    assert len(sel.parts["important"]) == budget // 2


def test_vispruner_matches_official_other_ratio():
    _, inputs, (hs, attns, _) = make_tower(1)
    sel = select("vispruner", inputs, 192, important_ratio=0.75)
    assert sel.indices.tolist() == official_vispruner(hs, attns, 192, 0.75).tolist()


def test_vispruner_residual_keeps_descending_attention_order():
    """Re-sorting the residual into raster order (the old behaviour) changes the selection."""
    from litelvlm.methods.vispruner import remove_duplicates

    _, inputs, _ = make_tower(0)
    attn = inputs.vision.cls_attention(-2)[0].float().mean(0)
    order = attn.argsort(descending=True)
    raster = remove_duplicates(inputs.patches(), torch.sort(order[64:]).values, 64)
    old = torch.sort(torch.cat([order[:64], raster])).values.tolist()
    assert old != select("vispruner", inputs, 128).indices.tolist()


@pytest.mark.parametrize("seed,budget", [(0, 66), (1, 63), (2, 66)])
def test_vispruner_odd_residual(seed, budget):
    """Odd N - int(K/2): the official statement raises; the project keeps the unpaired token in A."""
    _, inputs, (hs, attns, _) = make_tower(seed)
    assert (576 - int(budget * 0.5)) % 2 == 1
    with pytest.raises(IndexError, match="shape mismatch"):
        official_vispruner(hs, attns, budget, 0.5)
    sel = select("vispruner", inputs, budget)
    assert len(sel) == budget == len(set(sel.indices.tolist()))
    assert sel.indices.tolist() == sorted(sel.indices.tolist())
    assert sel.indices.tolist() == official_vispruner(hs, attns, budget, 0.5, odd_fix=True).tolist()


def test_vispruner_odd_fix_is_inert_where_the_official_code_runs():
    _, _, (hs, attns, _) = make_tower(2)
    assert torch.equal(official_vispruner(hs, attns, 192, 0.5),
                       official_vispruner(hs, attns, 192, 0.5, odd_fix=True))


@pytest.mark.parametrize("budget", [1, 575, 576])
def test_vispruner_edge_budgets_return_k_tokens(budget):
    t, _, _ = make_tower(0)
    sel = select("vispruner", SelectorInputs(t.trace()), budget)
    assert len(set(sel.indices.tolist())) == budget
    assert sel.indices.min() >= 0 and sel.indices.max() < 576


# ----------------------------------------------------------------------------------------------
# VisionZip
# ----------------------------------------------------------------------------------------------

def test_visionzip_official_splits():
    assert [split_budget(k) for k in (64, 128, 192)] == [(54, 10), (108, 20), (162, 30)]
    assert split_budget(1) == (1, 0) and split_budget(3) == (3, 0) and split_budget(4) == (3, 1)
    assert split_budget(48) == (41, 7)  # 40.5 rounds half up


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("budget", [64, 128, 192, 66, 576])
def test_visionzip_matches_official(seed, budget):
    _, inputs, (hs, attns, metric) = make_tower(seed)
    dominant, contextual = split_budget(budget)
    feats, sel = visual_features(inputs, "visionzip", budget)
    expected, sources = official_visionzip(hs, attns, metric, dominant, contextual)
    assert sel.indices.tolist() == sources.tolist()
    assert sel.indices[0] == CLS_INDEX and len(sel) == budget == feats.shape[0]
    torch.testing.assert_close(feats, expected[0], atol=1e-5, rtol=1e-5)
    assert sel.parts["dominant"].tolist() == sources[:dominant].tolist()
    assert sel.parts["contextual"].tolist() == sources[dominant:].tolist()


def test_visionzip_contextual_token_is_target_plus_mean_of_merged():
    t, _, _ = make_tower(0)
    inputs = SelectorInputs(t.trace())
    feats, sel = visual_features(inputs, "visionzip", 64)
    hs = inputs.vision.hidden_states[-2][0]
    torch.testing.assert_close(feats[0], hs[0])  # CLS first
    dom = sel.parts["dominant"][1:]
    assert dom.tolist() == sorted(dom.tolist())
    torch.testing.assert_close(feats[1:54], inputs.patches()[dom])
    # sum over contextual rows of (row - target) * n_assigned = sum of the merged patches
    targets = sel.parts["contextual"]
    merged = torch.ones(576, dtype=torch.bool)
    merged[dom] = False
    merged[targets] = False
    _, k, _ = inputs.vision.qkv(-2)
    key = F.normalize(k[0, 1:].reshape(576, HEADS, -1).mean(1), dim=-1)
    assign = (key[merged] @ key[targets].T).argmax(-1)
    counts = torch.bincount(assign, minlength=10).clamp(min=1)[:, None].float()
    torch.testing.assert_close(((feats[54:] - inputs.patches()[targets]) * counts).sum(0),
                               inputs.patches()[merged].sum(0), atol=1e-3, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# Both, in half precision (many exact attention ties: the sorts must break them as the official ones)
# ----------------------------------------------------------------------------------------------

def test_half_precision_matches_official():
    """float16, LLaVA's evaluation dtype: many exact attention ties, broken as the official sorts do."""
    _, inputs, (hs, attns, metric) = make_tower(0, torch.float16)
    assert attns[-2][0, :, 0, 1:].mean(0).unique().numel() < 576  # ties present
    sel = select("vispruner", inputs, 128)
    assert sel.indices.tolist() == official_vispruner(hs, attns, 128, 0.5).tolist()
    for budget in (64, 192):
        feats, sel = visual_features(inputs, "visionzip", budget)
        expected, sources = official_visionzip(hs, attns, metric, *split_budget(budget))
        assert sel.indices.tolist() == sources.tolist() and feats.dtype == torch.float16
        torch.testing.assert_close(feats, expected[0])


# ----------------------------------------------------------------------------------------------
# Every budget 1..N: a transformers CLIPVisionModel (8x8 grid, eager attention) and the 576-patch tower
# ----------------------------------------------------------------------------------------------

class HFTower:
    """A random transformers CLIP vision tower as a CLIP backend. The official inputs are its hidden
    states and, for block -2, :func:`official_clip_attention` on the block's own modules: the
    transformers 4.x eager statements the official code ran (transformers 5's eager kernel scales
    after the product and softmaxes in float32, which rounds otherwise for a head size of 12)."""

    name = "random-clip-8x8"

    def __init__(self, grid: int = 8, dtype: torch.dtype = torch.float32, seed: int = 0):
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        torch.manual_seed(seed)
        cfg = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                               num_attention_heads=4, image_size=14 * grid, patch_size=14)
        self.model = CLIPVisionModelWithProjection(cfg).eval().to(dtype)  # has .vision_model in v5
        for layer in self.model.vision_model.encoder.layers:  # peaked CLS rows, as CLIP's
            layer.self_attn.q_proj.weight.data.mul_(4.0)
        self.vision_heads, self.grid = 4, grid
        pixels = torch.randn(1, 3, 14 * grid, 14 * grid,
                             generator=torch.Generator().manual_seed(seed)).to(dtype)
        with torch.no_grad():
            out = self.model(pixel_values=pixels, output_hidden_states=True)
            self.hidden_states = tuple(out.hidden_states)
            self.attentions, self.metric = official_attentions(self.model.vision_model.encoder.layers,
                                                               self.hidden_states)

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        layer = self.model.vision_model.encoder.layers[block]
        x = layer.layer_norm1(hidden)
        a = layer.self_attn
        return a.q_proj(x), a.k_proj(x), a.v_proj(x)

    def inputs(self) -> SelectorInputs:
        return SelectorInputs(VisionTrace(hidden_states=self.hidden_states, grid=(self.grid, self.grid),
                                          num_prefix_tokens=1, backend=self))


def official_attentions(layers, hidden_states):
    """``attentions`` (only block -2's entry computed; never read elsewhere) and VisionZip's ``metric``."""
    block = len(layers) - 2
    layer = layers[block]
    w, metric = official_clip_attention(layer.self_attn, layer.layer_norm1(hidden_states[block]))
    return tuple(w if b == block else None for b in range(len(layers))), metric


@functools.cache
def hf_tower(dtype: torch.dtype = torch.float32) -> HFTower:
    return HFTower(dtype=dtype)


def check_visionzip_budget(inputs, hs, attns, metric, budget, atol=1e-5):
    """The project at K against the official forward; K <= 3 (C = 0: the official ``R // C`` divides by
    zero) against the documented fallback: the official dominant tokens only."""
    dominant, contextual = split_budget(budget)
    feats, sel = visual_features(inputs, "visionzip", budget)
    if contextual == 0:
        with pytest.raises(ZeroDivisionError):
            official_visionzip(hs, attns, metric, dominant, contextual)
        top = attns[-2][0, :, 0, 1:].sum(0).topk(dominant - 1).indices.sort().values
        assert sel.indices.tolist() == [CLS_INDEX] + top.tolist()
        torch.testing.assert_close(feats, torch.cat([hs[-2][0, :1], hs[-2][0, 1:][top]]), atol=0, rtol=0)
        return
    expected, sources = official_visionzip(hs, attns, metric, dominant, contextual)
    assert sel.indices.tolist() == sources.tolist(), budget
    torch.testing.assert_close(feats, expected[0], atol=atol, rtol=0)


def check_vispruner_budget(inputs, hs, attns, budget):
    """The project at K against the official code; where the official code raises (odd residual,
    ``expand`` to a negative size) or silently returns K - 1 tokens (odd residual with
    ``R // 2 - r == 0``), against the documented extension (``odd_fix``)."""
    sel = select("vispruner", inputs, budget)
    try:
        expected = official_vispruner(hs, attns, budget, 0.5)
    except (IndexError, RuntimeError):
        expected = None
    if expected is not None and len(expected) == budget:
        assert sel.indices.tolist() == expected.tolist(), budget
        return "official"
    fixed = official_vispruner(hs, attns, budget, 0.5, odd_fix=True)
    assert sel.indices.tolist() == fixed.tolist() and len(fixed) == budget, budget
    if expected is not None:  # the official silent drop: one token fewer, all of them kept here
        assert set(expected.tolist()) < set(fixed.tolist())
    return "fallback"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_budget_small_grid(dtype):
    """K = 1..64 on a transformers CLIP tower (head size 12: the order of scaling matters)."""
    t = hf_tower(dtype)
    inputs, hs, attns = t.inputs(), t.hidden_states, t.attentions
    assert torch.equal(scores.eager_cls_attention(inputs, -2), attns[-2][0, :, 0, 1:])  # bit-identical
    kinds = set()
    for budget in range(1, 65):
        check_visionzip_budget(inputs, hs, attns, t.metric, budget)
        kinds.add(check_vispruner_budget(inputs, hs, attns, budget))
    assert kinds == {"official", "fallback"}


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_budget_576_patches(dtype):
    """K = 1..576 on LLaVA-1.5's grid (the random 3-block tower above)."""
    _, inputs, (hs, attns, metric) = make_tower(0, dtype)
    # the project's own attention, not the rows given
    inputs = SelectorInputs(make_tower(0, dtype)[0].trace())
    for budget in range(1, 577):
        check_visionzip_budget(inputs, hs, attns, metric, budget)
        check_vispruner_budget(inputs, hs, attns, budget)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_budget_vit_l_14_336_random(coco128, dtype):
    """K = 1..576 on ``vit-l-14-336-random`` (24 blocks) and a real image, the official attention statements
    on its modules as the official input. With the earlier one-row float32 attention (``attention="project"``)
    VisionZip left the official code at K = 379 on this image (a near-tie at the top-k boundary)."""
    from PIL import Image

    from litelvlm.clip import load_clip

    clip = load_clip("vit-l-14-336-random", dtype=dtype)
    pixels = clip.preprocess([Image.open(coco128 / "images" / "COCO_train2014_000000000025.jpg")])
    with torch.no_grad():
        hs = tuple(clip.model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states)
        attns, metric = official_attentions(clip.model.vision_model.encoder.layers, hs)
    inputs = SelectorInputs(clip.trace_image(pixels))
    for budget in range(1, 577):
        check_visionzip_budget(inputs, hs, attns, metric, budget,
                               atol=1e-5 if dtype == torch.float32 else 1e-2)
        check_vispruner_budget(inputs, hs, attns, budget)
    if dtype == torch.float32:
        before = visual_features(inputs, "visionzip", 379, attention="project")[1].indices
        assert before.tolist() != official_visionzip(hs, attns, metric, *split_budget(379))[1].tolist()
