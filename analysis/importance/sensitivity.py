"""Output sensitivity: the drop in mask IoU when a spatial group of visual tokens is removed.

captum's ``FeatureAblation`` runs on a keep-indicator over the N tokens (1 = kept); an
ablated group is set to 0, and the forward function drops those tokens from the LLM
input (true removal, as pruning does, rather than zeroing embeddings). The forward
returns the IoU of the resulting mask with the unpruned mask, so each group's attribution
is ``IoU(all) - IoU(group removed) = 1 - IoU(group removed)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import FeatureAblation


def spatial_groups(grid: tuple[int, int], group: int) -> torch.Tensor:
    """(N,) group id of each raster-order token: ``group x group`` blocks of the patch grid."""
    if group < 1:
        raise ValueError(f"group size must be >= 1, got {group}")
    rows, cols = grid
    r = torch.arange(rows)[:, None] // group
    c = torch.arange(cols)[None, :] // group
    per_row = (cols + group - 1) // group
    return (r * per_row + c).reshape(-1)


def mask_iou(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """IoU of two boolean masks; 1.0 when both are empty."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).bool()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).bool()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def ablation_importance(iou_fn: Callable[[torch.Tensor], float], grid: tuple[int, int], group: int = 2,
                        show_progress: bool = False) -> torch.Tensor:
    """(N,) IoU drop of each token's group; ``iou_fn(keep (N,) bool) -> IoU vs the unpruned mask``."""
    n = grid[0] * grid[1]
    groups = spatial_groups(grid, group)

    def forward(keep: torch.Tensor) -> torch.Tensor:
        return torch.tensor([float(iou_fn(k > 0.5)) for k in keep], dtype=torch.float64)

    fa = FeatureAblation(forward)
    attr = fa.attribute(torch.ones(1, n, dtype=torch.float64), baselines=0.0, feature_mask=groups[None],
                        perturbations_per_eval=1, show_progress=show_progress)
    return attr[0].float()
