"""VisPruner (Zhang et al., 2025): important tokens by [CLS] attention, then diverse tokens.

Following the reference implementation: the important share (default 1/2 of K) is the
top of the head-averaged CLS->patch attention of the penultimate block; the remaining
tokens are thinned by repeated duplicate removal (split alternately into sets A and B,
drop the ``step`` tokens of A most similar, by cosine of the feature-layer tokens, to
their nearest neighbour in B) until the diverse share is left.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import Selection, SelectorInputs, register_selector
from ..scores import cls_attention_mean


def remove_duplicates(features: torch.Tensor, indices: torch.Tensor, keep: int, step: int = 8) -> torch.Tensor:
    """Thin ``indices`` to ``keep`` tokens by bipartite duplicate removal on ``features[indices]``."""
    while indices.numel() > keep:
        r = min(step, indices.numel() - keep)
        x = F.normalize(features[indices].float(), dim=-1)
        a, b = x[::2], x[1::2]
        if b.numel() == 0:
            return indices[:keep]
        r = min(r, a.shape[0])
        sim = (a @ b.T).max(dim=-1).values
        distinct = sim.argsort(descending=True, stable=True)[r:]
        indices = torch.cat([indices[::2][distinct], indices[1::2]])
    return indices


@register_selector("vispruner", description="VisPruner: [CLS]-attention important tokens + diverse tokens")
def vispruner(inputs: SelectorInputs, budget: int, *, important_ratio: float = 0.5,
              attention_block: int = -2, step: int = 8) -> Selection:
    attn = cls_attention_mean(inputs, attention_block)
    n_imp = int(budget * important_ratio)
    order = attn.argsort(descending=True, stable=True)
    important, residual = order[:n_imp], order[n_imp:]
    residual = torch.sort(residual).values
    diverse = remove_duplicates(inputs.patches(), residual, budget - n_imp, step)
    idx = torch.sort(torch.cat([important, diverse])).values
    return Selection(indices=idx, scores=attn, parts={"important": important, "diverse": diverse})
