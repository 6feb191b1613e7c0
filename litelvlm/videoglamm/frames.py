"""``VideoGLaMMPipeline.ground``'s step for a CLIP-side method: per-frame selection (the LLM and SAM 2 then
run on every frame as for any method).

Each frame's CLIP tokens are pruned by :func:`litelvlm.videoglamm.pruning.prune_clip` (this project's
adaptation: no official code prunes VideoGLaMM), the pruned visual sequence (each frame's context tokens, then
the untouched 16 x 64 InternVideo2 tokens) replaces the prompt's ``<image>`` ids, numbered 0..S'-1 as
VideoGLaMM numbers any sequence it is given, and the mask head runs as for the LLM-side methods. The
selection's ``indices`` are the kept CLIP patches of all frames, frame ``f``'s patch ``i`` as ``f * 576 + i``
(negative: a merged or [CLS] token), in the LLM's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import LiteLVLMError
from ..pruning import Selection
from ..video.runner import FRAME_PATCHES
from .pruning import PrunedVisual


@dataclass
class FrameSelection(Selection):
    """The selection of every frame of a clip, with what each frame kept: its budget K_f and the LLM context
    tokens its kept patches became (144 under ``pool``)."""

    budgets: list[int] = field(default_factory=list)
    context_tokens: list[int] = field(default_factory=list)


def frame_selection(pruned: PrunedVisual, patches: int) -> FrameSelection:
    """One selection of every frame's of ``pruned``: frame ``f``'s patch ``i`` as ``f * patches + i``
    (negative indices kept), with each frame's budget and context tokens."""
    parts = [torch.where(s.indices >= 0, s.indices + f * patches, s.indices) for f,
             s in enumerate(pruned.selections)]
    return FrameSelection(indices=torch.cat(parts).long(), budgets=list(pruned.budgets),
                          context_tokens=list(pruned.context_tokens))


def frame_stage(pipe, prepared, method: str, budget: int, given: bool = False, positions: str = "official",
                allocation=None, **options) -> tuple:
    """``ground``'s step for CLIP-side ``method`` keeping ``budget`` of each frame's CLIP patches
    (``allocation``: one budget per frame instead, or a rule ``allocation(prepared, method, budget)`` giving
    each input's): (the LLM's visual input, the selection, None, None), the kept tokens renumbered.
    ``given``: the caller gave ``visual_embeds``, which the LLM-side methods alone take."""
    if given:
        raise LiteLVLMError(f"{method} selects each frame's CLIP tokens and builds the LLM's visual input "
                            "itself; visual_embeds replaces the LLM's tokens for the LLM-side methods only")
    if positions == "keep":
        raise LiteLVLMError(f"positions='keep': {method} passes projected and pooled tokens of each frame's "
                            "kept CLIP patches, which have no original position in the LLM's sequence")

    if callable(allocation):
        allocation = allocation(prepared, method, budget)
    pruned = pipe.prune_frames(prepared, method, budget, allocation, **options)
    return pruned.visual, frame_selection(pruned, FRAME_PATCHES), None, None


__all__ = ["FrameSelection", "frame_selection", "frame_stage"]
