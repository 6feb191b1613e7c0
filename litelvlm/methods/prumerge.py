"""PruMerge and PruMerge+ (Shang et al., 2024): [CLS]-attention outliers, merged with their neighbours.

Official source: 42Shawn/LLaVA-PruMerge @ 097c041, ``llava/model/multimodal_encoder/clip_encoder.py``. The
official budget is adaptive (``prumerge_adaptive``, ``adaptive_budget``); the fixed-budget mode
(``select(name, inputs, K)``) is this project's, not in the official code.

Details, the official statements with their lines and the deviations: docs/methods/prumerge.md
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
