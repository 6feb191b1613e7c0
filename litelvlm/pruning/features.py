"""The visual features the LLM receives for any CLIP-side method."""

from __future__ import annotations

import torch

from .selection import Selection, SelectorInputs, check_budget, select


def visual_features(inputs: SelectorInputs, method: str = "none", budget: int | None = None,
                    **options) -> tuple[torch.Tensor, Selection]:
    """(K, W) feature-layer tokens the LLM would receive, and the selection behind them.

    ``method="none"`` (or K = N with ``raster=True``) gives the unpruned features in raster order.
    """
    patches = inputs.patches()
    n = patches.shape[0]
    if method == "none":
        budget = n if budget is None else budget
        check_budget(budget, n)
        sel = Selection(indices=torch.arange(n, device=patches.device))
        return patches, sel
    sel = select(method, inputs, n if budget is None else budget, **options)
    feats = sel.features if sel.features is not None else patches[sel.indices.to(patches.device)]
    return feats, sel
