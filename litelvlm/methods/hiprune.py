"""HiPrune (Liu et al., 2025): anchor, buffer and register tokens from the vision encoder's attention.

Official source: Danielement321/HiPrune @ 6e83a12, ``LLaVA/llava/model/llava_arch.py`` ``encode_images``
(LLaVA-1.5). Other grids than 24x24 are this project's adaptation.

Details, the official statements with their lines and the deviations: docs/methods/hiprune.md
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.scores import eager_attention
from ..pruning.selection import Selection, SelectorInputs

#: The official defaults (README's table: ``HIPRUNE_ALPHA``, ``HIPRUNE_OBJECT_LAYER``) for LLaVA-1.5's
#: 24-layer CLIP ViT-L/14-336.
ALPHA, OBJECT_LAYER, OFFICIAL_DEPTH = 0.1, 9, 24


def default_object_layer(num_layers: int) -> int:
    """The official object layer (9) on a 24-layer tower; on a tower of another depth the same relative depth,
    ``round(9 * L / 24)`` (at least 1): this project's adaptation, as SparseVLM's layers scale with the
    LLM."""
    return (OBJECT_LAYER if num_layers == OFFICIAL_DEPTH
            else max(1, round(OBJECT_LAYER * num_layers / OFFICIAL_DEPTH)))


def global_attention(inputs: SelectorInputs, block: int) -> torch.Tensor:
    """(N,) attention each patch receives in ``block``, averaged over heads, then over every query row."""
    return eager_attention(inputs, block).mean(dim=0).mean(dim=0)[inputs.vision.num_prefix_tokens:]


def anchors_and_buffers(attention: torch.Tensor, count: int, cols: int) -> torch.Tensor:
    """The ``count`` highest-attention patches and their four neighbours (flat-index offsets -1, +1,
    -cols, +cols, clamped to the grid), each once."""
    top = torch.topk(attention[None], k=count, dim=1)[1]
    near = torch.cat([top, top - 1, top + 1, top - cols, top + cols], dim=1).clamp(0, attention.shape[0] - 1)
    return torch.unique(near, sorted=False)


def hiprune(inputs: SelectorInputs, budget: int, *, alpha: float = ALPHA, object_layer: int | None = None,
            feature_block: int | None = None) -> Selection:
    """HiPrune: ``round(K * alpha / 5)`` anchors from the object layer (1-based, as ``HIPRUNE_OBJECT_LAYER``;
    default :func:`default_object_layer`) with their buffers, then registers from the feature layer's block;
    kept tokens in raster order."""
    vision = inputs.vision
    n = vision.num_patches
    object_layer = default_object_layer(vision.num_layers) if object_layer is None else int(object_layer)
    if not 1 <= object_layer <= vision.num_layers:
        raise ValueError(f"object_layer must be in 1..{vision.num_layers} (1-based); got {object_layer}")
    if feature_block is None:  # attentions[select_layer]: the block whose output are the features
        feature_block = vision.layer_index(inputs.feature_layer) - 1
    deep = global_attention(inputs, feature_block)
    shallow = global_attention(inputs, object_layer - 1)
    anchored = anchors_and_buffers(shallow, round(budget * float(alpha) / 5), vision.grid[1])
    taken = torch.zeros(n, dtype=torch.bool, device=deep.device)
    taken[anchored] = True
    registers = torch.topk((deep - taken.int())[None], k=budget - anchored.shape[0], dim=1)[1][0]
    indices = torch.sort(torch.cat([anchored, registers])).values
    return Selection(indices=indices, scores=deep,
                     parts={"anchors_and_buffers": anchored, "registers": registers})


HIPRUNE = Method("clip", hiprune, reads_vision_blocks=True, ranks=True, tower_attention_weights=True,
                 name="hiprune",
                 description=("HiPrune: anchor tokens (object-layer attention) with their 4 neighbours, "
                              "then register tokens (feature-layer attention), raster order"))
