"""The visual features the LLM receives for any CLIP-side method."""

from __future__ import annotations

import torch

from ..budget import Budget
from ..methods import get_method
from .selection import Selection, SelectorInputs, select


def visual_features(inputs: SelectorInputs, method: str = "none", budget: Budget | int | None = None,
                    **options) -> tuple[torch.Tensor, Selection]:
    """(K, W) feature-layer tokens the LLM would receive, and the selection behind them; ``budget`` (None: all N) is
    counted once against the patches.

    The baseline (``Method.baseline``: ``none``) gives the unpruned features in raster order.
    """
    patches = inputs.patches()
    n = patches.shape[0]
    if get_method(method).baseline:
        Budget.of(budget).count(n)
        sel = Selection(indices=torch.arange(n, device=patches.device))
        return patches, sel
    sel = select(method, inputs, budget, **options)
    feats = sel.features if sel.features is not None else patches[sel.indices.to(patches.device)]
    return feats, sel
