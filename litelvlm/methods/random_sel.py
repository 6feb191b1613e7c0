"""Random selection, seeded: the same seed and image give the same tokens."""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.selection import Selection, SelectorInputs


def random_select(inputs: SelectorInputs, budget: int, *, seed: int | None = None) -> Selection:
    g = torch.Generator().manual_seed(inputs.seed if seed is None else seed)
    idx = torch.randperm(inputs.num_patches, generator=g)[:budget]
    return Selection(indices=torch.sort(idx).values.to(inputs.device))

RANDOM = Method("clip", random_select, scores_only=True,
                name="random",
                description="K tokens drawn uniformly without replacement (seeded), raster order")
