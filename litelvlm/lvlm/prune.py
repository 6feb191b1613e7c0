"""Pruning in the loop: which visual tokens the LLM receives for a method and a budget.

* CLIP-side methods (stage ``clip``: ``litelvlm``, ``random``, ``visionzip``, ...): selection on the CLIP
  trace of the one vision forward, then the projector outputs at the selected indices (or the
  projection of the selection's merged features, for VisionZip): :func:`clip_side`.
* Methods that act with the LLM (stages ``llm-*``, e.g. ``none``, ``fastv``, ``sparsevlm``): their
  ``select`` gets an ``LLMContext``; their ``forward``, if any, runs the LLM on what they kept
  (``GlammPipeline.ground``).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..method import Method
from ..pruning import Selection, check_budget, select

#: CLIP-side methods with an ``attention`` option (``official`` / ``project``, see litelvlm.pruning.scores).
CLS_ATTENTION_METHODS = ("visionzip", "vispruner", "prumerge", "prumerge+")


def clip_side(pipeline, prepared, method: str, budget: int, full: torch.Tensor | None, *,
              visual_embeds_given: bool = False, **options) -> tuple[torch.Tensor, Selection]:
    """(K, h) LLM inputs and the selection of a CLIP-side method; ``full`` are the (N, h) projector
    outputs to gather from (None: computed here). ``visual_embeds_given``: ``full`` was given by the
    caller (to differentiate w.r.t. it), so a method that merges CLIP features is refused. The [CLS]-attention
    methods compute their attention as the official code (``attention="official"``) unless the pipeline's
    numerics score in float32 (``Numerics.project()``), which keeps the earlier ``attention="project"``."""
    if method in CLS_ATTENTION_METHODS and "attention" not in options:
        numerics = getattr(pipeline, "numerics", None)
        if numerics is not None and numerics.score_dtype == "float32":
            options["attention"] = "project"
    sel = select(method, prepared.selector_inputs(), budget, **options)
    if sel.features is not None:  # merged tokens (VisionZip): project the merged CLIP features
        if full is not None and visual_embeds_given:
            raise LiteLVLMError(f"method {method!r} merges CLIP features, so its LLM inputs are not rows of "
                                "the given visual_embeds; differentiate w.r.t. the CLIP features instead")
        return pipeline.model.project(sel.features.to(pipeline.dtype)), sel
    if full is None:  # the official order: gather the kept CLIP features, then the projector on K rows
        feats = prepared.vision.patches(prepared.feature_layer)[0]
        return pipeline.model.project(feats[sel.indices.to(feats.device)].to(pipeline.dtype)), sel
    return full[sel.indices.to(full.device)], sel


def resolve(spec: Method, budget: int | None, num_patches: int) -> int:
    """The budget of a call of ``spec`` (``None``: all N tokens), checked: 1..N (N + 1 for PruMerge's extra token)."""
    budget = num_patches if budget is None else budget
    check_budget(budget, num_patches, spec.extra_tokens)
    return budget
