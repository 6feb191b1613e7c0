"""VisionZip (Yang et al., 2025): dominant tokens by [CLS] attention plus merged contextual tokens.

Following the reference implementation: 54/64 of K are dominant tokens (top head-averaged
CLS attention of the penultimate block); the rest are contextual: uniformly spaced target
tokens among the remaining ones, each averaged with the remaining tokens whose keys (same
block) are most similar to it. Because tokens are merged, the selection carries features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import Selection, SelectorInputs, register_selector
from ..scores import cls_attention_mean

DOMINANT_SHARE = 54 / 64


@register_selector("visionzip", description="VisionZip: dominant [CLS]-attention tokens + merged contextual tokens")
def visionzip(inputs: SelectorInputs, budget: int, *, dominant_share: float = DOMINANT_SHARE,
              attention_block: int = -2) -> Selection:
    attn = cls_attention_mean(inputs, attention_block)
    feats = inputs.patches()
    n_dom = min(budget, max(1, int(round(budget * dominant_share)))) if budget > 1 else 1
    n_ctx = budget - n_dom
    dominant = torch.sort(attn.topk(n_dom).indices).values
    keep = torch.ones(attn.numel(), dtype=torch.bool, device=attn.device)
    keep[dominant] = False
    remaining = keep.nonzero().squeeze(1)
    out_feats = [feats[dominant]]
    targets = remaining[:0]
    if n_ctx > 0 and remaining.numel() > 0:
        _, k, _ = inputs.vision.qkv(attention_block)
        metric = F.normalize(k[inputs.image_index, inputs.vision.num_prefix_tokens:][remaining].float(), dim=-1)
        step = max(1, remaining.numel() // n_ctx)
        t_pos = torch.arange(0, remaining.numel(), step, device=attn.device)[:n_ctx]
        is_t = torch.zeros(remaining.numel(), dtype=torch.bool, device=attn.device)
        is_t[t_pos] = True
        targets = remaining[is_t]
        others = remaining[~is_t]
        merged = feats[targets].float().clone()
        counts = torch.ones(targets.numel(), device=attn.device)
        if others.numel():
            assign = (metric[~is_t] @ metric[is_t].T).argmax(-1)
            merged.index_add_(0, assign, feats[others].float())
            counts.index_add_(0, assign, torch.ones(others.numel(), device=attn.device))
        out_feats.append((merged / counts[:, None]).to(feats.dtype))
    idx = torch.cat([dominant, targets])
    return Selection(indices=idx, features=torch.cat(out_feats), scores=attn,
                     parts={"dominant": dominant, "contextual": targets})
