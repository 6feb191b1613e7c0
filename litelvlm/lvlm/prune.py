"""Pruning in the loop: which visual tokens the LLM receives for a method and a budget.

* ``none``: all N projector outputs in raster order.
* CLIP-side selectors (``litelvlm``, ``random``, ``visionzip``, ...): selection on the CLIP
  trace of the one vision forward, then the projector outputs at the selected indices (or
  the projection of the selection's merged features, for VisionZip).
* LLM-side methods (``fastv``, ``llm-attention``, ``saliency``): the registered function gets an
  ``LLMContext`` and returns a ``Selection``; ``parts["prune_layer"]`` says where it applies.
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..pruning import Selection, check_budget, get_method, select

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


def resolve(method: str, budget: int | None, num_patches: int) -> tuple[str, int]:
    """Validate the method name and budget (``None``: all N tokens; N + 1 for PruMerge's extra token)."""
    spec = get_method(method)
    budget = num_patches if budget is None else budget
    check_budget(budget, num_patches, spec.extra_tokens)
    if method == "none" and budget != num_patches:
        raise LiteLVLMError(f"method 'none' keeps all {num_patches} tokens; got budget {budget}")
    if spec.kind == "llm" and method != "none" and spec.fn is None:
        raise LiteLVLMError(f"method {method!r} is registered but not implemented yet")
    return spec.kind, budget
