"""SparseVLM on Qwen2.5-VL (UniPixel): this project's adaptation, not official code.

The statements of ``litelvlm.methods.sparsevlm`` (Gumpest/SparseVLMs @ 26a5f48) with this project's
multi-axis M-RoPE position rule after each pruning layer.

Details, the official statements with their lines and the deviations: docs/methods/sparsevlm_qwen.md
"""

from __future__ import annotations

import torch

from ..llm.context import LLMContext
from ..method import Method
from ..pruning.selection import Selection
from .sparsevlm import (
    OFFICIAL_LAYERS,
    PRUNING_LOC,
    sparsevlm_select,
    stage_counts,
    staged_forward,
    token_schedule,
)


def every_axis_renumbered(ctx: LLMContext, length: int) -> torch.Tensor:
    """(axes, 1, L') (or (1, L') on 1-D RoPE): the pruned sequence's rows 0..L'-1, the same on every axis."""
    return torch.arange(length, device=ctx.embeds.device).expand(*ctx.position_ids.shape[:-1], length)


def shallow_stages(budget: int, num_layers: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pruning layers, keep counts) for an LLM of ``num_layers`` layers: the mapped official layers, stages
    landing on one layer collapsed into one with the last of their counts (docs/methods/sparsevlm_qwen.md)."""
    layers: list[int] = []
    counts: list[int] = []
    for loc, count in zip(PRUNING_LOC, stage_counts(budget)):
        layer = min(round(loc * num_layers / OFFICIAL_LAYERS), num_layers - 1)
        if layers and layer <= layers[-1]:
            counts[-1] = count
        else:
            layers.append(layer)
            counts.append(count)
    return tuple(layers), tuple(counts)


def pruning_layers(num_layers: int) -> tuple[int, ...]:
    """The layers of :func:`shallow_stages` (the same for every budget): the layers whose rater attention
    the variant reads."""
    return tuple(sorted({min(round(loc * num_layers / OFFICIAL_LAYERS), num_layers - 1)
                         for loc in PRUNING_LOC}))


def sparsevlm_qwen_select(ctx: LLMContext, budget: int, *, layers: tuple[int, ...] | None = None,
                          counts: tuple[int, ...] | None = None) -> Selection:
    """SparseVLM's staged pruning with recycling, positions renumbered on every M-RoPE axis (module
    docstring)."""
    if layers is None:
        layers, planned = shallow_stages(budget, ctx.num_layers)
        counts = planned if counts is None else counts
    return sparsevlm_select(ctx, budget, layers=layers, counts=counts, renumber=every_axis_renumbered)


def sparsevlm_qwen_forward(ctx: LLMContext, sel: Selection) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The staged forward that made ``sel`` (``staged_forward`` with this variant's position rule)."""
    return staged_forward(ctx, sel, renumber=every_axis_renumbered)


def qwen_stages(budget: int, num_visual: int, num_layers: int) -> tuple[tuple[int, int], ...]:
    """The visual tokens (recycled included) the LLM's layers see, ``((first_layer, tokens), ...)``."""
    layers, counts = shallow_stages(budget, num_layers)
    per_layer = token_schedule(budget, num_visual, num_layers, layers, counts)
    return tuple((i, v) for i, v in enumerate(per_layer) if i == 0 or v != per_layer[i - 1])


SPARSEVLM_QWEN = Method("llm-stages", sparsevlm_qwen_select, forward=sparsevlm_qwen_forward,
                        schedule=qwen_stages, host_sync=True, original_positions=False,
                        attention_weights=pruning_layers,
                        name="sparsevlm", backbone="qwen2.5-vl",
                        description=("SparseVLM on Qwen2.5-VL, this project's adaptation (no official "
                                     "Qwen code): the official stages and recycling, the pruned sequence "
                                     "renumbered 0..S'-1 on all three M-RoPE axes (recycled tokens too)"))
