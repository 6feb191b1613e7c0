"""SparseVLM on Qwen2.5-VL (UniPixel): this project's adaptation, not official code.

The official SparseVLM (Gumpest/SparseVLMs @26a5f48) has no Qwen2.5-VL code: its position rule (L302,
``position_ids[:, :L']``) renumbers the pruned sequence on LLaVA's one-axis RoPE. This variant runs the same
statements as :mod:`litelvlm.methods.sparsevlm` (text raters, per-stage rater attention, top-k, the DPC-KNN
recycling; ``sparsevlm_forward`` unchanged) with a multi-axis position rule:

* Layers ``0..l_1`` (up to and including the first pruning layer) run on the unpruned sequence with its
  original 3-D M-RoPE ids (transformers' ``get_rope_index``), as the official code runs them on the original
  positions.
* After each pruning layer the sequence (the text before the image, the kept visual tokens in sequence order,
  the recycled cluster means, the text after) is numbered ``0..S'-1`` and EVERY token gets its index on all
  three M-RoPE axes (t = h = w = its row), the kept and the recycled visual tokens alike: a recycled token
  (the mean of a cluster of dropped tokens, which has no original 3-D id) sits at the rows right after the
  kept visual tokens, as on LLaVA. This is the family's renumbered layout (``pipeline.layout(prepared,
  K').position_ids`` for K' < N, ``positions="renumber"``). With equal ids on the three axes Qwen2.5-VL's
  M-RoPE is its 1-D RoPE (every frequency band reads the same position), so from the first pruning layer on
  the official statements do what they do on one axis; with axis-independent positions the selections equal
  the GLaMM code path's (tested).
* Layers: the official ``pruning_loc`` (2, 6, 15) of a 32-layer LLM mapped as ``round(l * L / 32)`` (GLaMM's
  deviation 3: (2, 5, 13) on Qwen2.5-VL-7B's 28 layers). Where an LLM is too shallow for three distinct layers
  (the 2-layer test model: 0, 0, 1), stages that land on the same layer collapse into one that keeps the LAST
  of their counts (``shallow_stages``: (0, 1) with the last two counts); ``layers=``/``counts=`` override.

``positions="keep"`` is refused (recycled tokens have no original position), so ``official`` and ``renumber``
both mean the rule above. Budgets, counts, recycling and precision are those of
:mod:`litelvlm.methods.sparsevlm`.
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
    landing on one layer collapsed into one with the last of their counts (see the module docstring)."""
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
