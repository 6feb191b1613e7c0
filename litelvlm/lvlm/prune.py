"""Pruning in the loop: which visual tokens the LLM receives for a method and a budget.

* CLIP-side methods (stage ``clip``: ``litelvlm``, ``random``, ``visionzip``, ...): selection on the CLIP
  trace of the one vision forward, then the family's LLM inputs for the selection
  (``GroundingPipeline.clip_selection_tokens``: for GLaMM, the projector outputs at the selected indices, or
  the projection of the selection's merged features, for VisionZip): :func:`clip_side`.
* Methods that act with the LLM (stages ``llm-*``, e.g. ``none``, ``fastv``, ``sparsevlm``): their
  ``select`` gets an ``LLMContext``; their ``forward``, if any, runs the LLM on what they kept
  (``GroundingPipeline.ground``).
"""

from __future__ import annotations

import inspect

import torch

from ..errors import LiteLVLMError
from ..method import Method
from ..methods import get_method
from ..pruning import Selection, check_budget, select


def clip_side(pipeline, prepared, method: str, budget: int, full: torch.Tensor | None, *,
              visual_embeds_given: bool = False, **options) -> tuple[torch.Tensor, Selection]:
    """(K, h) LLM inputs and the selection of a CLIP-side method; ``full`` are the (N, h) projector
    outputs to gather from (None: computed here). ``visual_embeds_given``: ``full`` was given by the
    caller (to differentiate w.r.t. it), so a method that merges CLIP features is refused. The [CLS]-attention
    methods (those whose ``select`` takes an ``attention`` option: ``official`` / ``project``, see
    litelvlm.pruning.scores) compute their attention as the official code (``attention="official"``) unless
    the pipeline's numerics score in float32 (``Numerics.project()``), which keeps the earlier
    ``attention="project"``."""
    takes_attention = "attention" in inspect.signature(get_method(method).select).parameters
    if takes_attention and "attention" not in options:
        numerics = getattr(pipeline, "numerics", None)
        if numerics is not None and numerics.score_dtype == "float32":
            options["attention"] = "project"
    sel = select(method, prepared.selector_inputs(), budget, **options)
    if sel.features is not None and full is not None and visual_embeds_given:  # merged tokens (VisionZip)
        raise LiteLVLMError(f"method {method!r} merges CLIP features, so its LLM inputs are not rows of "
                            "the given visual_embeds; differentiate w.r.t. the CLIP features instead")
    return pipeline.clip_selection_tokens(prepared, sel, full), sel


def resolve(spec: Method, budget: int | None, num_patches: int) -> int:
    """The budget of a call of ``spec`` (``None``: all N tokens), checked: 1..N (N + 1 for PruMerge's extra token)."""
    budget = num_patches if budget is None else budget
    check_budget(budget, num_patches, spec.extra_tokens)
    return budget


def keeps_all(sel: Selection, n: int) -> bool:
    """Whether ``sel`` keeps all N tokens in raster order (the LLM input is then the visual tokens as they are)."""
    return len(sel) == n and bool(torch.equal(sel.indices.cpu(), torch.arange(n)))
