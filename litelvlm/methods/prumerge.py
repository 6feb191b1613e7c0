"""PruMerge and PruMerge+ (Shang et al., 2024): [CLS]-attention outliers, merged with their neighbours.

A statement-level port of the official code, 42Shawn/LLaVA-PruMerge at commit
097c04116a58465e4bcb58cec44a94018a68ff1a, ``llava/model/multimodal_encoder/clip_encoder.py``:

* L93-112 / L182-201: forward hooks on ``layers[23].self_attn.{q,k}_proj`` (the last of CLIP
  ViT-L's 24 blocks, whose input is ``hidden_states[-2]``) give q and k, all heads concatenated,
  before scaling; ``attn = softmax(q @ k^T * C ** -0.5)`` is ONE attention over the full width
  (C = 1024, the feature width; not the per-head attention), over all 577 keys (CLS included),
  and ``cls_attn = attn[:, 0, 1:]`` is the CLS query's row over the patches (not renormalised).
  The features are the patch tokens of ``hidden_states[select_layer]`` (LLaVA: -2), L74-81.
* L34-47 ``outlier_dectection``: in float32 numpy, ``Q1, Q3 = np.percentile(attn, 25 / 75)``;
  the patches with attention ``> Q3 + 1.5 * (Q3 - Q1)`` are outliers; ``reduction_ratio`` is
  their share. L115-116 / L203-205: ``idx = topk(cls_attn, int(N * reduction_ratio))``, i.e. the
  outliers in DESCENDING attention order (``int(576 * (c / 576)) == c`` for every count c).
* PruMerge+ only, L208-214 (the ``if_adaptive`` branch, the one ``forward`` runs, L300):
  ``step_length = int(1 / reduction_ratio)``; the samples ``arange(0, 575, int(step_length / 3))``
  that are not outliers (ascending) are appended: ``idx = [outliers, samples]``.
* L119-165 / L229-276, the merge: ``compl`` = the other patches, ASCENDING (``complement_idx``,
  L12-25). Keys are L2-normalised. For each kept token i (in ``idx`` order) the candidates are
  ``[kept tokens except i (idx order), compl]``; the 32 of highest key cosine to i (``topk``) are
  its cluster, and its new feature is ``x_i + sum(attn_j * x_j over the cluster)``: an
  UNnormalised attention-weighted sum (candidates may be other kept tokens).
* L168-170 / L278-280: one extra token ``sum(attn_j * x_j over compl)`` is appended, so the
  projector (``llava_arch.py`` ``encode_images``) gets ``len(idx) + 1`` tokens:
  ``[merged kept tokens in idx order, extra]``. L298-300: ``forward`` calls PruMerge+ with
  ``if_adaptive=True``; the README (Step 2) says to switch that line for PruMerge.

The budget is ADAPTIVE: the number of outliers depends on the image. ``prumerge_adaptive`` (or
the registered selectors with ``budget=None``) returns the official selection;
``adaptive_budget`` says its size (up to N + 1: PruMerge+'s outliers and samples can cover all N
patches, and the official code then hands the LLM N + 1 tokens; so can the project), and ``select(name,
inputs, adaptive_budget(inputs, plus), adaptive=True)`` runs it through the registry and the grounding
pipeline.

Fixed-budget mode (``select(name, inputs, K)``; NOT in the official code): K - 1 patch tokens
are kept and the extra token makes K.

* ``prumerge``: the top K - 1 patches by the same ``cls_attn`` (descending) instead of the
  outliers. This is the official ``if_adaptive=False`` branch of PruMerge (L114-116) with
  ``int(576 * reduction_ratio) = K - 1``; at K = ``adaptive_budget`` it is the adaptive selection.
* ``prumerge+``: the top ``ceil((K - 1) * top_share)`` patches by ``cls_attn`` (descending), then
  the rest of K - 1 as spatially uniform samples: evenly spaced (``rest[(j * R) // S]``,
  j = 0..S-1) in raster order over the R patches that are not top tokens (ascending). The default
  ``top_share = 1/4`` follows the adaptive branch, whose samples are spaced a third of the
  outliers' mean spacing apart (``int(step_length / 3)``): about three samples per outlier. The
  official non-adaptive PruMerge+ branch (L216-227, "this is for training": half top tokens,
  half ``arange(int(s / 2), 575, s)``, duplicates not removed, and a shape error unless the
  two counts agree) is not used.
* Both: the same merge and extra token; for K = 1 only the extra token (all patches merged).

Representation in :class:`~litelvlm.pruning.selection.Selection`: ``features`` are the rows the
projector receives, in the official order; ``indices`` name their sources: the kept patches,
then :data:`EXTRA_INDEX` (-2, not a patch) for the extra token; consumers that index patch
arrays drop it (``indices[indices >= 0]``). ``parts``: ``"outliers"`` (the attention-ranked
tokens), ``"spatial"`` (PruMerge+'s samples), ``"pruned"`` (ascending); ``scores`` is ``cls_attn``.

Deviations from the official code (none changes a selection the official code makes on
LLaVA-1.5's 576 patches, except where it would crash, or in exact ties, item 4):

1. Hard-coded sizes: ``layers[23]`` is ``attention_block=-1`` (the last block; the same block
   for CLIP ViT-L, whose block 23 is the last), the ``575`` of ``arange`` is N - 1, the cluster
   size 32 is ``min(32, N - 1)`` (for N <= 32 the official ``topk`` raises), and the sample step
   ``int(step_length / 3)`` is at least 1 (it always is for N = 576: at most a quarter of the
   values exceed Q3, so ``step_length >= 4``).
2. PruMerge+ with no outlier: ``int(1 / 0.0)`` raises ZeroDivisionError. Here the share is taken
   as at least 1/N for the step only (the spacing one outlier gives: ``step_length = N``), so
   the samples ``arange(0, N - 1, N // 3)`` are kept. PruMerge keeps only the extra token then,
   as the official code does (``topk`` of 0).
3. One image at a time: the official IQR statistics are over the whole batch (flattened); in
   LLaVA's evaluation the batch is one image.
4. Rounding and ties: arithmetic runs in the trace's dtype (the official code runs in the vision
   tower's, fp16 in LLaVA's evaluation), and the attention is the official full (S, S) product
   (``attention="official"``, the default; ``"project"``: the earlier one-row product, which rounds
   differently); the cluster similarities of all kept tokens are one matrix product with the token's own
   column set to -inf instead of one product per token over a list without it. Exact ties in ``topk``
   fall as torch breaks them, which may differ from the official per-token call.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LiteLVLMError
from ..method import Method
from ..pruning.scores import check_attention_mode
from ..pruning.selection import Selection, SelectorInputs

#: The entry of ``Selection.indices`` that stands for the extra token (all pruned patches merged).
EXTRA_INDEX = -2

#: Candidates merged into each kept token (``topk(cos_sim_matrix, k=int(32))``).
CLUSTER_SIZE = 32

#: Fixed-budget PruMerge+: the attention-ranked share of the K - 1 kept patches.
TOP_SHARE = 0.25


def cls_attention(inputs: SelectorInputs, block: int = -1,
                  attention: str = "official") -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) ``cls_attn`` = softmax(q_cls . k / sqrt(C)) over all keys, patch columns; and (N, C) patch keys.

    ``attention="official"``: the full (S, S) product and softmax, row 0 (L100-103), as the official
    code; ``"project"``: the earlier one-row product (rounds differently: ties at the IQR bound or a
    top-k boundary may fall otherwise)."""
    vision = inputs.vision
    if vision.num_prefix_tokens != 1:
        vision.cls(0)  # raises the "no CLS token" error where there is none
        raise ValueError(f"PruMerge expects exactly one prefix (CLS) token, got {vision.num_prefix_tokens}")
    q, k, _ = vision.qkv(block)
    q, k = q[inputs.image_index], k[inputs.image_index]
    width = inputs.patches().shape[-1]  # C of image_features
    rows = q if check_attention_mode(attention) == "official" else q[:1]
    attn = torch.softmax((rows @ k.T) * width ** -0.5, dim=-1)
    return attn[0, 1:], k[1:]


def outlier_ratio(attn: torch.Tensor) -> float:
    """The official ``outlier_dectection``: the share of values above Q3 + 1.5 IQR (float32 numpy)."""
    attn_np = attn.to(dtype=torch.float32).cpu().numpy().flatten()
    q1 = np.percentile(attn_np, 25)
    q3 = np.percentile(attn_np, 75)
    upper_bound = q3 + 1.5 * (q3 - q1)
    return len(np.where(attn_np > upper_bound)[0]) / len(attn_np)


def spatial_samples(outliers: torch.Tensor, num_patches: int, ratio: float) -> torch.Tensor:
    """PruMerge+'s adaptive samples: ``arange(0, N - 1, int(int(1 / ratio) / 3))`` minus the outliers."""
    step_length = int(1 / max(ratio, 1 / num_patches))  # deviation 2: no outlier -> step N
    seq = torch.arange(0, num_patches - 1, max(1, int(step_length / 3)), device=outliers.device)
    return seq[~torch.isin(seq, outliers)]


def even_samples(top: torch.Tensor, num_patches: int, count: int) -> torch.Tensor:
    """Fixed-budget PruMerge+: ``count`` evenly spaced patches (raster order) among those not in ``top``."""
    free = torch.ones(num_patches, dtype=torch.bool, device=top.device)
    free[top] = False
    rest = free.nonzero().squeeze(1)
    return rest[torch.arange(count, device=top.device) * rest.numel() // max(count, 1)]


def merge(features: torch.Tensor, keys: torch.Tensor, attn: torch.Tensor, kept: torch.Tensor,
          cluster_size: int = CLUSTER_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(kept) + 1, C) merged features ``[x_i + sum(attn_j x_j over i's cluster)..., extra]``; and the
    pruned."""
    n = features.shape[0]
    is_kept = torch.zeros(n, dtype=torch.bool, device=features.device)
    is_kept[kept] = True
    pruned = (~is_kept).nonzero().squeeze(1)  # complement_idx: ascending
    order = torch.cat([kept, pruned])  # the candidates: kept (idx order), then pruned
    keys_norm = F.normalize(keys, p=2, dim=-1)
    m = kept.numel()
    sim = keys_norm[kept] @ keys_norm[order].T  # (M, N)
    diag = torch.arange(m, device=sim.device)
    sim[diag, diag] = float("-inf")  # a kept token is not its own candidate
    cluster = order[sim.topk(min(cluster_size, n - 1), dim=-1).indices]  # (M, k) patch indices
    weighted = torch.sum(features[cluster] * attn[cluster].unsqueeze(-1), dim=1)
    extra = torch.sum(features[pruned] * attn[pruned].unsqueeze(-1), dim=0, keepdim=True)
    return torch.cat([features[kept] + weighted, extra]), pruned


def merged_selection(features: torch.Tensor, attn: torch.Tensor, keys: torch.Tensor, top: torch.Tensor,
                     spatial: torch.Tensor, cluster_size: int = CLUSTER_SIZE) -> Selection:
    """The selection of kept tokens ``[top, spatial]`` of ``features`` (N, C): each merged with its cluster
    (:func:`merge`, keys (N, d), weights ``attn`` (N,)), then the extra token (index :data:`EXTRA_INDEX`)."""
    kept = torch.cat([top, spatial])
    feats, pruned = merge(features, keys, attn, kept, cluster_size)
    extra = torch.full((1,), EXTRA_INDEX, dtype=torch.long, device=kept.device)
    return Selection(indices=torch.cat([kept, extra]), features=feats, scores=attn,
                     parts={"outliers": top, "spatial": spatial, "pruned": pruned})


def adaptive_kept(attn: torch.Tensor, plus: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(outliers in descending ``attn`` order, PruMerge+'s samples or none): the official adaptive choice
    (L115-116, L203-214)."""
    n = attn.shape[0]
    ratio = outlier_ratio(attn)
    top = torch.topk(attn, int(n * ratio), largest=True).indices
    return top, spatial_samples(top, n, ratio) if plus else top[:0]


def fixed_kept(attn: torch.Tensor, budget: int, plus: bool = False,
               top_share: float = TOP_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention-ranked, even samples) for K (not official): K - 1 tokens, PruMerge+ a ``top_share`` by
    ``attn``."""
    n = attn.shape[0]
    if not 1 <= budget <= n:
        raise LiteLVLMError(f"budget must satisfy 1 <= K <= {n}; got {budget}")
    kept = budget - 1
    n_top = min(kept, math.ceil(kept * top_share)) if plus else kept
    top = torch.topk(attn, n_top, largest=True).indices
    return top, even_samples(top, n, kept - n_top) if plus else top[:0]


def prumerge_adaptive(inputs: SelectorInputs, plus: bool = False, *, attention_block: int = -1,
                      cluster_size: int = CLUSTER_SIZE, attention: str = "official") -> Selection:
    """The official adaptive selection: IQR outliers (+ PruMerge+'s samples), merged, + the extra token."""
    attn, keys = cls_attention(inputs, attention_block, attention)
    top, spatial = adaptive_kept(attn, plus)
    return merged_selection(inputs.patches(), attn, keys, top, spatial, cluster_size)


def adaptive_budget(inputs: SelectorInputs, plus: bool = False, *, attention_block: int = -1,
                    attention: str = "official") -> int:
    """K of the official adaptive selection for this image (outliers [+ samples] + 1; up to N + 1)."""
    attn, _ = cls_attention(inputs, attention_block, attention)
    top, spatial = adaptive_kept(attn, plus)
    return top.numel() + spatial.numel() + 1


def prumerge_fixed(inputs: SelectorInputs, budget: int, plus: bool = False, *, top_share: float = TOP_SHARE,
                   attention_block: int = -1, cluster_size: int = CLUSTER_SIZE,
                   attention: str = "official") -> Selection:
    """The fixed-budget extension (not official): K - 1 attention-ranked [+ even] patches, merged, + extra."""
    attn, keys = cls_attention(inputs, attention_block, attention)
    top, spatial = fixed_kept(attn, budget, plus, top_share)
    return merged_selection(inputs.patches(), attn, keys, top, spatial, cluster_size)


def _run(inputs: SelectorInputs, budget: int | None, plus: bool, adaptive: bool | None,
         **options) -> Selection:
    if adaptive is None:
        adaptive = budget is None
    if not adaptive:
        if budget is None:
            raise LiteLVLMError("adaptive=False needs a budget")
        return prumerge_fixed(inputs, budget, plus, **options)
    options.pop("top_share", None)
    sel = prumerge_adaptive(inputs, plus, **options)
    if budget is not None and len(sel) != budget:
        name = "prumerge+" if plus else "prumerge"
        raise LiteLVLMError(f"{name} with adaptive=True keeps {len(sel)} tokens for this image, not "
                            f"{budget}; pass budget=adaptive_budget(inputs) (litelvlm.methods.prumerge)")
    return sel


def prumerge(inputs: SelectorInputs, budget: int | None = None, *, adaptive: bool | None = None,
             attention_block: int = -1, cluster_size: int = CLUSTER_SIZE,
             attention: str = "official") -> Selection:
    """PruMerge: official adaptive selection when ``budget`` is None (or ``adaptive=True``), else K tokens."""
    return _run(inputs, budget, False, adaptive, attention_block=attention_block, cluster_size=cluster_size,
                attention=attention)


def prumerge_plus(inputs: SelectorInputs, budget: int | None = None, *, adaptive: bool | None = None,
                  top_share: float = TOP_SHARE, attention_block: int = -1,
                  cluster_size: int = CLUSTER_SIZE, attention: str = "official") -> Selection:
    """PruMerge+: official adaptive selection when ``budget`` is None (or ``adaptive=True``), else K
    tokens."""
    return _run(inputs, budget, True, adaptive, top_share=top_share, attention_block=attention_block,
                cluster_size=cluster_size, attention=attention)

PRUMERGE = Method("clip", prumerge, extra_tokens=1, ranks=True, original_positions=False,
                  tower_attention_weights=True,
                  name="prumerge",
                  description=("PruMerge: [CLS]-attention IQR outliers + key-similarity merge (adaptive "
                               "K; fixed K: top K-1)"))
PRUMERGE_PLUS = Method("clip", prumerge_plus, extra_tokens=1, ranks=True,
                       original_positions=False, tower_attention_weights=True,
                       name="prumerge+",
                       description=("PruMerge+: PruMerge + spatially uniform samples (adaptive K; fixed "
                                    "K: top 1/4 + even samples)"))
