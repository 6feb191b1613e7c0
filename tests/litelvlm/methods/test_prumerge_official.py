"""PruMerge and PruMerge+ against a statement-by-statement transcription of their official code.

The transcription below follows ``CLIPVisionTower.token_prune_merge_advanced`` and
``token_prune_merge_advanced_plus`` line by line on plain tensors (batch dimension kept), split
at L227/L229 into the selection (``official_select``) and the merge (``official_merge``) so that
the fixed-budget extension's selections can be merged by the official statements too. The
inputs have LLaVA-1.5's shapes (CLIP ViT-L/14-336: 577 tokens = CLS + 24x24 patches, width 1024,
16 heads): random hidden states whose last block has a real pre-norm and q/k/v projections, so
the official hooks' q/k and the project's trace are computed by the same modules. The pipeline
tests run the official code, hooks included, on the tiny random GLaMM's CLIP tower.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litelvlm.clip.traces import VisionTrace
from litelvlm.errors import LiteLVLMError
from litelvlm.methods.prumerge import EXTRA_INDEX, adaptive_budget, prumerge_adaptive
from litelvlm.methods.select import select
from litelvlm.pruning import SelectorInputs

PRUMERGE_COMMIT = "097c04116a58465e4bcb58cec44a94018a68ff1a"

GRID, WIDTH, HEADS, LAYERS = 24, 1024, 16, 3
SEEDS = (0, 1, 2)
slow = pytest.mark.slow


def fast_first(values, first=1):
    """Parameters: the first ``first`` run by default, the others are marked slow (the official loop
    concatenates N x C tensors once per kept token)."""
    return [v if i < first else pytest.param(*(v if isinstance(v, tuple) else (v,)), marks=slow)
            for i, v in enumerate(values)]


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def complement_idx(idx, dim):
    """42Shawn/LLaVA-PruMerge @ 097c04116a58465e4bcb58cec44a94018a68ff1a,
    llava/model/multimodal_encoder/clip_encoder.py L12-25."""
    a = torch.arange(dim, device=idx.device)
    ndim = idx.ndim
    dims = idx.shape
    n_idx = dims[-1]
    dims = dims[:-1] + (-1, )
    for i in range(1, ndim):  # noqa: B007
        a = a.unsqueeze(0)
    a = a.expand(*dims)
    masked = torch.scatter(a, -1, idx, 0)
    compl, _ = torch.sort(masked, dim=-1, descending=False)
    compl = compl.permute(-1, *tuple(range(ndim - 1)))
    compl = compl[n_idx:].permute(*(tuple(range(1, ndim)) + (0,)))
    return compl


def outlier_dectection(attn):
    """clip_encoder.py L34-47 (same repository and commit)."""
    attn_np = attn.to(dtype=torch.float32).cpu().numpy().flatten()
    Q1 = np.percentile(attn_np, 25)
    Q3 = np.percentile(attn_np, 75)
    IQR = Q3 - Q1
    # lower_bound = Q1 - 1.5 * IQR
    upper_bound = Q3 + 1.5 * IQR
    outlier_indices = np.where((attn_np > upper_bound))[0]  # noqa: UP034
    ratio = len(outlier_indices) / len(attn_np)
    return ratio


def official_hooked_forward(vision_tower, images, block=23):
    """clip_encoder.py L93-107 (L182-196): hooks on ``layers[23]``'s k_proj/q_proj, the forward.
    ``block`` replaces the literal 23 (the tiny tower has 2 blocks; -1 is block 23 of 24)."""
    outputs = {}
    def hook_k(module, input, output):
        outputs['desired_k'] = output
    def hook_q(module, input, output):
        outputs['desired_q'] = output
    hook_handle_k = vision_tower.vision_model.encoder.layers[block].self_attn.k_proj.register_forward_hook(
        hook_k)
    hook_handle_q = vision_tower.vision_model.encoder.layers[block].self_attn.q_proj.register_forward_hook(
        hook_q)
    image_forward_outs = vision_tower(images.to(dtype=vision_tower.dtype), output_hidden_states=True)
    desired_layer_k = outputs["desired_k"]
    desired_layer_q = outputs["desired_q"]
    hook_handle_k.remove()
    hook_handle_q.remove()
    return image_forward_outs.hidden_states, desired_layer_q, desired_layer_k


def official_select(hidden_states, desired_layer_q, desired_layer_k, plus, if_adaptive=True,
                    reduction_ratio=1/8, select_layer=-2):
    """clip_encoder.py L98-116 (PruMerge) and L187-227 (PruMerge+), after the forward pass:
    ``feature_select`` (L73-81, 'patch'), the full-width CLS attention, the IQR outliers, and
    PruMerge+'s spatial samples (``self.device`` is k's device; the unused ``cls_token_last_layer``
    and the no-op ``.to(images.dtype)`` are left out). Returns (image_features, cls_attn, idx)."""
    device = desired_layer_k.device
    image_features = hidden_states[select_layer][:, 1:]
    B, N, C = image_features.shape
    attn = (desired_layer_q @ desired_layer_k.transpose(-2, -1)) * C ** -0.5
    attn = F.softmax(attn, dim=-1)
    cls_attn = attn[:, 0, 1:]
    if if_adaptive:
        reduction_ratio = outlier_dectection(cls_attn)#*3.5
    # [B, left_tokens] , sorted=True
    _, idx = torch.topk(cls_attn, int(N*reduction_ratio), dim=1, largest=True)
    if plus:
        if if_adaptive:
            step_length = int(1/reduction_ratio)
            arithmetic_sequence = torch.arange(0, 575, int(step_length/3)).to(device=device)
            original_tensor_1d = idx.flatten().to(device=device)
            filtered_sequence = torch.tensor(
                [x for x in arithmetic_sequence if x not in original_tensor_1d]).to(
                device=device)
            concatenated_tensor = torch.cat((idx, filtered_sequence.unsqueeze(0)), dim=1)
            idx = concatenated_tensor
        else:
            # # this is for training
            step_length = int(1/reduction_ratio)
            new_idx = torch.zeros((idx.size(0), idx.size(1)*2), dtype=torch.long).to(device=device)
            for i in range(idx.size(0)):
                arithmetic_sequence = torch.arange(int(step_length/2), 575,
                                                   int(step_length)).to(device=device)
                original_tensor_1d = idx[i].flatten().to(device=device)
                filtered_sequence = arithmetic_sequence
                concatenated_tensor = torch.cat((original_tensor_1d, filtered_sequence), dim=0)
                new_idx[i] = concatenated_tensor
            idx = new_idx
    return image_features, cls_attn, idx


def official_merge(image_features, cls_attn, desired_layer_k, idx):
    """clip_encoder.py L117-171 (PruMerge) / L229-281 (PruMerge+; the same statements, except
    ``x_i + weighted_avg`` for ``weighted_avg + x_i``): the key-similarity merge and the extra token."""
    B, N, C = image_features.shape
    index = idx.unsqueeze(-1).expand(-1, -1, C)  # [B, left_tokens, C]
    Key_wo_cls = desired_layer_k[:, 1:]  # [B, N-1, C]
    x_others = torch.gather(image_features, dim=1, index=index)  # [B, left_tokens, C]
    x_others_attn = torch.gather(cls_attn, dim=1, index=idx)
    Key_others = torch.gather(Key_wo_cls, dim=1, index=index)  # [B, left_tokens, C]
    compl = complement_idx(idx, N)  # [B, N-1-left_tokens]
    non_topk = torch.gather(image_features, dim=1, index=compl.unsqueeze(-1).expand(-1, -1, C))
    non_topk_Key = torch.gather(Key_wo_cls, dim=1, index=compl.unsqueeze(-1).expand(-1, -1, C))
    non_topk_attn = torch.gather(cls_attn, dim=1, index=compl)  # [B, N-1-left_tokens]
    Key_others_norm = F.normalize(Key_others, p=2, dim=-1)
    non_topk_Key_norm = F.normalize(non_topk_Key, p=2, dim=-1)
    B, left_tokens, C = x_others.size()
    updated_x_others = torch.zeros_like(x_others)
    for b in range(B):
        for i in range(left_tokens):
            key_others_norm = Key_others_norm[b, i, :].unsqueeze(0).unsqueeze(0)
            before_i_Key = Key_others_norm[b, :i, :].unsqueeze(0)
            after_i_Key = Key_others_norm[b, i+1:, :].unsqueeze(0)
            before_i_x_others = x_others[b, :i, :].unsqueeze(0)
            after_i_x_others = x_others[b, i+1:, :].unsqueeze(0)
            rest_x_others = torch.cat([before_i_x_others, after_i_x_others, non_topk[b, :, :].unsqueeze(0)],
                                      dim=1)
            before_i_x_others_attn = x_others_attn[b, :i].unsqueeze(0)
            after_i_x_others_attn = x_others_attn[b, i+1:].unsqueeze(0)
            rest_x_others_attn = torch.cat([before_i_x_others_attn, after_i_x_others_attn,
                                            non_topk_attn[b, :].unsqueeze(0)], dim=1)
            rest_Keys = torch.cat([before_i_Key, after_i_Key, non_topk_Key_norm[b, :, :].unsqueeze(0)], dim=1)
            cos_sim_matrix = torch.bmm(key_others_norm, rest_Keys.transpose(1, 2))
            _, cluster_indices = torch.topk(cos_sim_matrix, k=int(32), dim=2, largest=True)  # noqa: UP018
            cluster_tokens = rest_x_others[:, cluster_indices.squeeze(), :]
            weights = rest_x_others_attn[:, cluster_indices.squeeze()].unsqueeze(-1)
            # update cluster centers
            weighted_avg = torch.sum(cluster_tokens * weights, dim=1) #/ torch.sum(weights)
            updated_center = weighted_avg + x_others[b, i, :]
            updated_x_others[b, i, :] = updated_center
    extra_one_token = torch.sum(non_topk * non_topk_attn.unsqueeze(-1), dim=1, keepdim=True)  # [B, 1, C]
    updated_x_others = torch.cat([updated_x_others, extra_one_token], dim=1)
    image_features = updated_x_others
    return image_features


def official(hidden_states, q, k, plus, **kw):
    """The whole official function on hooked q/k: (features the projector gets (L+1, C), idx (L,))."""
    feats, cls_attn, idx = official_select(hidden_states, q, k, plus, **kw)
    return official_merge(feats, cls_attn, k, idx)[0], idx[0]


@functools.cache
def official_on_tower(seed: int, plus: bool, dtype: torch.dtype = torch.float32, **kw):
    """:func:`official` on :func:`make_tower`'s inputs, computed once (its per-token loop is slow on the
    CPU)."""
    _, _, (hs, q, k) = make_tower(seed, dtype)
    return official(hs, q, k, plus, **kw)


# ----------------------------------------------------------------------------------------------
# LLaVA-1.5-shaped inputs
# ----------------------------------------------------------------------------------------------

class RandomTower:
    """A stand-in CLIP backend: random hidden states, a real pre-norm + q/k/v for every block."""

    name = "random-vit-l-14-336"
    vision_heads = HEADS

    def __init__(self, seed: int, grid: int = GRID, dtype: torch.dtype = torch.float32, q_gain: float = 3.0):
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.grid = grid
        self.norms = [nn.LayerNorm(WIDTH) for _ in range(LAYERS)]
        self.qkv = [[nn.Linear(WIDTH, WIDTH) for _ in range(3)] for _ in range(LAYERS)]
        for norm in self.norms:
            nn.init.normal_(norm.weight, 1.0, 0.2)
            nn.init.normal_(norm.bias, 0.0, 0.2)
        for q, _, _ in self.qkv:  # a peaked CLS row, as CLIP's, so that there are IQR outliers
            q.weight.data.mul_(q_gain)
        for m in (*self.norms, *(lin for block in self.qkv for lin in block)):
            m.to(dtype)
        s = 1 + grid * grid
        self.hidden_states = tuple((torch.randn(1, s, WIDTH, generator=g) * 2).to(dtype)
                                   for _ in range(LAYERS + 1))

    @torch.no_grad()
    def vision_qkv(self, block, hidden):
        x = self.norms[block](hidden)
        return tuple(lin(x) for lin in self.qkv[block])

    def inputs(self) -> SelectorInputs:
        return SelectorInputs(VisionTrace(hidden_states=self.hidden_states, grid=(self.grid, self.grid),
                                          num_prefix_tokens=1, backend=self))

    def official_qk(self):
        """What the official hooks on the last block's q_proj / k_proj capture."""
        q, k, _ = self.vision_qkv(LAYERS - 1, self.hidden_states[LAYERS - 1])
        return q, k


@functools.cache
def make_tower(seed: int, dtype: torch.dtype = torch.float32):
    t = RandomTower(seed, dtype=dtype)
    return t, t.inputs(), (t.hidden_states, *t.official_qk())


# ----------------------------------------------------------------------------------------------
# Adaptive (official) mode
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", fast_first(SEEDS))
@pytest.mark.parametrize("plus", [False, True])
def test_adaptive_matches_official(seed, plus):
    _, inputs, _ = make_tower(seed)
    expected, idx = official_on_tower(seed, plus)
    sel = prumerge_adaptive(inputs, plus)
    assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX]
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)
    n_out = len(sel.parts["outliers"])
    assert 0 < n_out < 576 // 4
    assert len(sel) == adaptive_budget(inputs, plus) == len(idx) + 1
    if plus:  # the samples follow the outliers, ascending, none of them an outlier
        spatial = sel.parts["spatial"].tolist()
        assert spatial == sorted(spatial) and not set(spatial) & set(sel.parts["outliers"].tolist())
        assert len(sel) > 2 * n_out
    else:
        assert sel.parts["spatial"].numel() == 0
    assert sel.parts["pruned"].tolist() == sorted(set(range(576)) - set(idx.tolist()))


@pytest.mark.parametrize("method,plus", [("prumerge", False), ("prumerge+", True)])
def test_registry_adaptive_mode(method, plus):
    from litelvlm.methods import get_method

    _, inputs, _ = make_tower(0)
    expected, idx = official_on_tower(0, plus)
    budget = adaptive_budget(inputs, plus)
    sel = select(method, inputs, budget, adaptive=True)
    assert sel.indices[:-1].tolist() == idx.tolist()
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)
    assert get_method(method).select(inputs).indices.tolist() == sel.indices.tolist()  # budget=None: adaptive
    with pytest.raises(LiteLVLMError, match="adaptive_budget"):
        select(method, inputs, budget + 1, adaptive=True)


# ----------------------------------------------------------------------------------------------
# Fixed-budget mode (not in the official code)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,budget", fast_first([(0, 64), (1, 64), (0, 128), (1, 192)]))
def test_fixed_prumerge_is_the_official_non_adaptive_branch(seed, budget):
    """``prumerge`` at K = the official ``if_adaptive=False`` with ``int(576 * ratio) = K - 1``."""
    _, inputs, _ = make_tower(seed)
    ratio = (budget - 1) / 576
    assert int(576 * ratio) == budget - 1
    expected, idx = official_on_tower(seed, False, if_adaptive=False, reduction_ratio=ratio)
    sel = select("prumerge", inputs, budget)
    assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX] and len(sel) == budget
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)


def test_fixed_prumerge_at_the_adaptive_budget_is_the_official_selection():
    _, inputs, _ = make_tower(0)
    expected, idx = official_on_tower(0, False)
    sel = select("prumerge", inputs, adaptive_budget(inputs))
    assert sel.indices[:-1].tolist() == idx.tolist()
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("seed,budget", fast_first([(0, 64), (0, 2), (1, 128), (0, 192), (1, 576)], 2))
def test_fixed_prumerge_plus(seed, budget):
    """Top ceil((K-1)/4) by the official ``cls_attn``, the rest evenly spaced among the others, merged
    by the official statements."""
    _, inputs, (hs, q, k) = make_tower(seed)
    feats, cls_attn, _ = official_select(hs, q, k, True)
    sel = select("prumerge+", inputs, budget)
    kept = budget - 1
    n_top = math.ceil(kept / 4)
    top = cls_attn[0].topk(n_top).indices
    rest = sorted(set(range(576)) - set(top.tolist()))
    spatial = [rest[j * len(rest) // (kept - n_top)] for j in range(kept - n_top)]
    assert sel.parts["outliers"].tolist() == top.tolist() and sel.parts["spatial"].tolist() == spatial
    assert sel.indices.tolist() == top.tolist() + spatial + [EXTRA_INDEX] and len(sel) == budget
    idx = torch.tensor([top.tolist() + spatial])
    torch.testing.assert_close(sel.features, official_merge(feats, cls_attn, k, idx)[0], atol=1e-5, rtol=1e-5)
    if kept - n_top > 1:  # evenly spread: gaps between samples differ by at most the top tokens in between
        gaps = np.diff(spatial)
        assert gaps.max() - gaps.min() <= n_top + 1


@pytest.mark.parametrize("method", ["prumerge", "prumerge+"])
def test_budget_one_is_the_extra_token(method):
    _, inputs, _ = make_tower(0)
    sel = select(method, inputs, 1)
    attn = sel.scores
    assert sel.indices.tolist() == [EXTRA_INDEX]
    torch.testing.assert_close(sel.features[0], (inputs.patches() * attn[:, None]).sum(0))


# ----------------------------------------------------------------------------------------------
# Deviations
# ----------------------------------------------------------------------------------------------

def test_no_outlier():
    """Uniform attention: no outlier. PruMerge keeps the extra token only, as the official code; the
    official PruMerge+ divides by zero, the project samples with step N // 3 (deviation 2)."""
    t = RandomTower(0, q_gain=0.0)
    for q, _, _ in t.qkv:
        q.bias.data.zero_()
    inputs = t.inputs()
    hs, q, k = t.hidden_states, *t.official_qk()
    expected, idx = official(hs, q, k, False)
    sel = prumerge_adaptive(inputs)
    assert idx.numel() == 0 and sel.indices.tolist() == [EXTRA_INDEX]
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ZeroDivisionError):
        official(hs, q, k, True)
    assert prumerge_adaptive(inputs, plus=True).indices.tolist() == [0, 192, 384, EXTRA_INDEX]


def test_small_grid_clusters():
    """N - 1 < 32 candidates: the official ``topk(k=32)`` raises; here every candidate is in the cluster."""
    t = RandomTower(0, grid=4)
    inputs = t.inputs()
    hs, q, k = t.hidden_states, *t.official_qk()
    with pytest.raises(RuntimeError):
        official(hs, q, k, False, if_adaptive=False, reduction_ratio=4 / 16)
    sel = select("prumerge", inputs, 5)
    x, a = inputs.patches(), sel.scores
    for row, i in zip(sel.features[:-1], sel.indices[:-1].tolist()):
        others = [j for j in range(16) if j != i]
        torch.testing.assert_close(row, x[i] + (x[others] * a[others, None]).sum(0))


@pytest.mark.parametrize("plus", fast_first([False, True]))
def test_half_precision_matches_official(plus):
    """float16, LLaVA's evaluation dtype: same outliers and samples; features to fp16 rounding."""
    _, inputs, _ = make_tower(0, torch.float16)
    expected, idx = official_on_tower(0, plus, torch.float16)
    sel = prumerge_adaptive(inputs, plus)
    assert sel.indices[:-1].tolist() == idx.tolist() and sel.features.dtype == torch.float16
    torch.testing.assert_close(sel.features, expected)  # float16 defaults: rtol 1e-3, atol 1e-5


# ----------------------------------------------------------------------------------------------
# In the GLaMM loop (tiny random model, a real image)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loop():
    """The pipeline and the same random CLIP tower as a transformers model (``WithProjection``: in
    transformers 5 it is the class that still has LLaVA's ``.vision_model.encoder.layers`` path)."""
    from transformers import CLIPVisionModelWithProjection

    from litelvlm.clip import resolve_random_model
    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0")
    tower = CLIPVisionModelWithProjection.from_pretrained(
        resolve_random_model("tiny336-random:0", "hf")).eval()
    return pipe, tower


@pytest.fixture(scope="module")
def prepared(loop, coco128):
    from PIL import Image

    pipe, tower = loop
    image = Image.open(sorted((coco128 / "images").glob("*.jpg"))[0]).convert("RGB")
    with torch.no_grad():
        pixels = pipe.clip.preprocess([image], processor=pipe.numerics.clip_preprocess)
        official_inputs = official_hooked_forward(tower, pixels, block=-1)
    return pipe.prepare(image, ["the object on the left"]), official_inputs


@pytest.mark.parametrize("method", ["prumerge", "prumerge+"])
@pytest.mark.parametrize("budget", [576, 192, 128, 64])
def test_pruned_glamm_pipeline(loop, prepared, method, budget):
    pipe, _ = loop
    prep, (hs, q, k) = prepared
    out = pipe.ground(prep, method, budget)
    assert len(out.kept_indices) == budget and out.kept_indices[-1] == EXTRA_INDEX
    assert out.masks.shape[0] == 1 and torch.isfinite(out.mask_logits).all()
    if method == "prumerge":  # the official non-adaptive branch, hooks and all, on the pipeline's tower
        expected, idx = official(hs, q, k, False, if_adaptive=False, reduction_ratio=(budget - 1) / 576)
        assert out.kept_indices[:-1].tolist() == idx.tolist()
        torch.testing.assert_close(out.selection.features, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("method,plus", [("prumerge", False), ("prumerge+", True)])
def test_pruned_glamm_pipeline_adaptive_is_official(loop, prepared, method, plus):
    pipe, _ = loop
    prep, (hs, q, k) = prepared
    expected, idx = official(hs, q, k, plus)
    out = pipe.ground(prep, method, adaptive_budget(prep.selector_inputs(), plus), adaptive=True)
    assert out.kept_indices.tolist() == idx.tolist() + [EXTRA_INDEX]
    torch.testing.assert_close(out.selection.features, expected, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Adaptive counts from none to all: a CLS attention row built so that the IQR outliers are known
# ----------------------------------------------------------------------------------------------

class DesignedTower:
    """A backend whose last block's q/k give a chosen CLS attention row: the CLS query is e_0, key j has
    ``logit_j * sqrt(C)`` in dimension 0 (so ``softmax(q . k / sqrt(C))`` over patches is ``softmax(logits)``)
    and noise elsewhere (distinct key cosines for the merge, no near-ties in its top-32). Patches with logit 0
    share one attention (Q1 = Q3, IQR = 0): exactly the patches with a positive logit are outliers."""

    name = "designed-cls-attention"
    vision_heads = 1

    def __init__(self, outliers: list[int], width: int = WIDTH, grid: int = GRID, dtype=torch.float32):
        g = torch.Generator().manual_seed(len(outliers))
        n = grid * grid
        logits = torch.zeros(1 + n)
        logits[0] = 4.0  # the CLS key
        for rank, j in enumerate(outliers):
            logits[1 + j] = 6.0 - 2.0 * rank / max(1, len(outliers))  # distinct, descending by rank
        self.grid, self.width = grid, width
        self.k = torch.randn(1, 1 + n, width, generator=g) * 5.0  # as large as dimension 0: distinct cosines
        self.k[..., 0] = logits * width ** 0.5
        self.q = torch.randn(1, 1 + n, width, generator=g)
        self.q[0, 0] = 0
        self.q[0, 0, 0] = 1.0
        self.q, self.k = self.q.to(dtype), self.k.to(dtype)
        self.hidden_states = tuple((torch.randn(1, 1 + n, width, generator=g)).to(dtype)
                                   for _ in range(LAYERS + 1))

    def vision_qkv(self, block, hidden):
        return self.q, self.k, self.k

    def trace(self) -> VisionTrace:
        return VisionTrace(hidden_states=self.hidden_states, grid=(self.grid, self.grid), num_prefix_tokens=1,
                           backend=self)


#: outlier sets: none, one, many (step_length 14: samples every 4th patch), nearly all (step 1: all but
#: patch 575 sampled; 576 tokens), all (575 is an outlier: the official code hands the LLM 577 tokens)
DESIGNS = {"none": [], "one": [300], "many": list(range(5, 576, 14))[:40],
           "large": list(range(0, 480, 4)), "all": list(range(0, 480, 4))[:-1] + [575]}


@pytest.mark.parametrize("design", list(DESIGNS))
@pytest.mark.parametrize("plus", [False, True])
def test_adaptive_counts_none_to_all(design, plus):
    t = DesignedTower(DESIGNS[design])
    inputs = SelectorInputs(t.trace())
    hs = t.hidden_states
    attn = prumerge_adaptive(inputs).scores
    assert sorted(attn.topk(len(DESIGNS[design])).indices.tolist()) == sorted(DESIGNS[design])
    if plus and design == "none":  # deviation 2: the official int(1 / 0.0) raises
        with pytest.raises(ZeroDivisionError):
            official(hs, t.q, t.k, True)
        assert prumerge_adaptive(inputs, plus=True).indices.tolist() == [0, 192, 384, EXTRA_INDEX]
        return
    expected, idx = official(hs, t.q, t.k, plus)
    sel = prumerge_adaptive(inputs, plus)
    assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX]
    torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=0)
    assert len(sel) == adaptive_budget(inputs, plus)
    assert len(sel.parts["outliers"]) == len(DESIGNS[design])
    method = "prumerge+" if plus else "prumerge"
    assert select(method, inputs, len(sel), adaptive=True).indices.tolist() == sel.indices.tolist()
    if plus and design == "all":  # every patch kept, and the extra token (an empty sum: zeros)
        assert len(sel) == 577 and sorted(idx.tolist()) == list(range(576))
        assert not sel.features[-1].any()
    if plus and design == "large":
        assert len(sel) == 576 and 575 not in idx.tolist()


def test_budget_n_plus_one_only_for_the_adaptive_selection():
    """K = N + 1 is the official adaptive PruMerge+ with every patch kept; other methods and the
    fixed-budget extension refuse it."""
    inputs = SelectorInputs(DesignedTower(DESIGNS["one"]).trace())
    with pytest.raises(LiteLVLMError, match="577"):
        select("prumerge+", inputs, 577)
    with pytest.raises(LiteLVLMError, match="1 <= K <= 576 "):
        select("visionzip", inputs, 577)
    with pytest.raises(LiteLVLMError, match="adaptive_budget"):
        select("prumerge+", inputs, 577, adaptive=True)


def test_pruned_glamm_pipeline_577_tokens(loop, prepared):
    """The official adaptive PruMerge+ keeping all 576 patches hands the LLM 577 tokens; the pipeline runs
    it (kept_indices end with -2), on a designed trace of the pipeline's CLIP width."""
    import dataclasses

    pipe, _ = loop
    prep, _ = prepared
    t = DesignedTower(DESIGNS["all"], width=prep.vision.hidden_states[0].shape[-1])
    prep = dataclasses.replace(prep, vision=t.trace())
    expected, idx = official(t.hidden_states, t.q, t.k, True)
    out = pipe.ground(prep, "prumerge+", 577, adaptive=True)
    assert out.kept_indices.tolist() == idx.tolist() + [EXTRA_INDEX] and len(out.kept_indices) == 577
    torch.testing.assert_close(out.selection.features, expected, atol=1e-5, rtol=0)
    assert out.masks.shape[0] == 1 and torch.isfinite(out.mask_logits).all()
    with pytest.raises(LiteLVLMError, match="577"):
        pipe.ground(prep, "prumerge+", 577)  # fixed-budget mode: at most N


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fixed_prumerge_every_budget_small_grid(dtype):
    """K = 1..64 on an 8x8 grid: ``prumerge`` at K is the official non-adaptive branch with
    ``int(N * ratio) = K - 1`` (K = 1: only the extra token); same kept tokens in float32 and bfloat16,
    merged features in float32 (in bfloat16 many cluster similarities tie exactly and ``topk`` over
    the project's candidate row, which holds the token itself at -inf, may break them otherwise)."""
    t = RandomTower(0, grid=8, dtype=dtype)
    inputs = t.inputs()
    hs, q, k = t.hidden_states, *t.official_qk()
    for budget in range(1, 65):
        ratio = (budget - 1) / 64
        assert int(64 * ratio) == budget - 1
        expected, idx = official(hs, q, k, False, if_adaptive=False, reduction_ratio=ratio)
        sel = select("prumerge", inputs, budget)
        assert sel.indices.tolist() == idx.tolist() + [EXTRA_INDEX], budget
        if dtype == torch.float32:  # bfloat16: exact ties among cluster similarities (deviation 4)
            torch.testing.assert_close(sel.features, expected, atol=1e-5, rtol=0)
