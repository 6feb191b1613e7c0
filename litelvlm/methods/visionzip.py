"""VisionZip (Yang et al., 2025): dominant tokens by [CLS] attention plus merged contextual tokens.

Official source: dvlab-research/VisionZip @ 3151f6d, ``visionzip/``. Budgets other than 64/128/192 follow
the official ratio (D = floor(K * 27/32 + 1/2); the deviations list).

Details, the official statements with their lines and the deviations: docs/methods/visionzip.md
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import cls_attention_rows
from ..pruning.selection import Selection, SelectorInputs

#: The official dominant share: 54 of 64 tokens (108/128, 162/192).
DOMINANT_SHARE = 54 / 64

#: The entry of ``Selection.indices`` that stands for the CLS token (not a patch).
CLS_INDEX = -1


def split_budget(budget: int, dominant_share: float = DOMINANT_SHARE) -> tuple[int, int]:
    """(dominant D incl. CLS, contextual C) for K tokens: D = floor(K * share + 1/2) in [1, K]."""
    n_dom = min(budget, max(1, int(budget * dominant_share + 0.5)))
    return n_dom, budget - n_dom


def dominant_split(attn: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(dominant, remaining) token indices, each ascending (sequence order): the top ``count`` by ``attn``
    (N,) and the others (``clip_encoder.py`` L49-57, the mask over the patches)."""
    top = attn.topk(count).indices
    is_dom = torch.zeros(attn.shape[0], dtype=torch.bool, device=attn.device)
    is_dom[top] = True
    return is_dom.nonzero().squeeze(1), (~is_dom).nonzero().squeeze(1)


def contextual_tokens(hidden: torch.Tensor, metric: torch.Tensor, remaining: torch.Tensor,
                      count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, contextual tokens (C, W)): the ``remaining`` tokens (ascending) merged into ``count`` targets
    (``clip_encoder.py`` L59-80): ``metric`` (N, d) over the tokens, normalised; targets every ``max(1, R //
    C)``-th remaining token; each other one assigned to the target of highest cosine; target + mean of its
    assigned ``hidden`` (N, W) rows."""
    device = hidden.device
    metric = metric[remaining]
    metric = metric / metric.norm(dim=-1, keepdim=True)
    step = max(1, metric.shape[0] // count)
    target_pos = torch.arange(0, metric.shape[0], step, device=device)[:count]
    is_target = torch.zeros(metric.shape[0], dtype=torch.bool, device=device)
    is_target[target_pos] = True
    targets = remaining[target_pos]
    assign = (metric[~is_target] @ metric[target_pos].T).argmax(dim=-1)  # (R - C,)
    merge_hidden = hidden[remaining[~is_target]]
    one_hot = torch.zeros(assign.shape[0], count, dtype=hidden.dtype, device=device)
    one_hot[torch.arange(assign.shape[0], device=device), assign] = 1
    counts = one_hot.sum(0).clamp(min=1)[:, None]
    aggregated = one_hot.T @ merge_hidden / counts
    return targets, hidden[targets] + aggregated


def visionzip(inputs: SelectorInputs, budget: int, *, dominant_share: float = DOMINANT_SHARE,
              attention_block: int | None = None, attention: str = "official") -> Selection:
    vision = inputs.vision
    if vision.num_prefix_tokens != 1:
        vision.cls(0)  # raises the "no CLS token" error where there is none
        raise ValueError(f"VisionZip expects exactly one prefix (CLS) token, got {vision.num_prefix_tokens}")
    layer = vision.layer_index(inputs.feature_layer)
    if attention_block is None:  # the official code takes attentions[-2], layers[-2] with hidden_states[-2]
        attention_block = layer - 1
        if attention_block < 0:
            raise ValueError(f"feature layer {inputs.feature_layer} is the embedding output; "
                             "VisionZip needs the attention of the block that produced it")
    n_dom, n_ctx = split_budget(budget, dominant_share)
    hidden = vision.hidden_states[layer][inputs.image_index]  # (S, W), CLS first
    device = hidden.device

    # dominant: CLS + the top D-1 patches by head-summed CLS attention, in sequence order
    attn = cls_attention_rows(inputs, attention_block, attention).sum(0)  # (N,)
    dominant, remaining = dominant_split(attn, n_dom - 1)
    out = [hidden[:1], hidden[1:][dominant]]

    targets = remaining[:0]
    if n_ctx > 0:
        _, k, _ = vision.qkv(attention_block)
        heads = vision.backend.vision_heads
        k = k[inputs.image_index]
        metric = k.reshape(k.shape[0], heads, -1).mean(1)[1:]  # (N, W/H): keys averaged over heads
        targets, contextual = contextual_tokens(hidden[1:], metric, remaining, n_ctx)
        out.append(contextual)

    cls = torch.full((1,), CLS_INDEX, dtype=torch.long, device=device)
    idx = torch.cat([cls, dominant, targets])
    return Selection(indices=idx, features=torch.cat(out), scores=attn,
                     parts={"dominant": torch.cat([cls, dominant]), "contextual": targets})

VISIONZIP = Method("clip", visionzip, ranks=True, original_positions=False, tower_attention_weights=True,
                   name="visionzip",
                   description="VisionZip: dominant [CLS]-attention tokens + merged contextual tokens")
