"""A CLIP-side method run by name (:func:`select`), and the visual features the LLM receives for any CLIP-side
method (:func:`visual_features`)."""

from __future__ import annotations

from typing import Any

import torch

from ..budget import Budget
from ..pruning.mapped import MappedInputs
from ..pruning.run import run_selector
from ..pruning.selection import Selection, SelectorInputs
from . import get_method


def select(method: str, inputs: SelectorInputs | MappedInputs, budget: Budget | int,
           **options: Any) -> Selection:
    """Run a CLIP-side method (:attr:`Method.acts_on_clip <litelvlm.method.Method.acts_on_clip>`) by name
    keeping ``budget`` (a :class:`~litelvlm.budget.Budget` or an int K), counted once against the input's
    patches."""
    spec = get_method(method)
    return run_selector(spec, inputs, Budget.of(budget).count(inputs.num_patches, spec.extra_tokens),
                        **options)


def visual_features(inputs: SelectorInputs, method: str = "none", budget: Budget | int | None = None,
                    **options) -> tuple[torch.Tensor, Selection]:
    """(K, W) feature-layer tokens the LLM would receive, and the selection behind them; ``budget`` (None: all
    N) is counted once against the patches.

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
