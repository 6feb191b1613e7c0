"""Pruning in the loop: which visual tokens the LLM receives for a method and a budget K (counted by
``ground``).

Each method's :class:`~litelvlm.method_stage.Stage` runs one step of ``GroundingPipeline.ground`` here (its
``step`` function):

* a CLIP-side method (``CLIP_STAGE``: ``litelvlm``, ``random``, ``visionzip``, ...): selection on the CLIP
  trace of the one vision forward, then the family's LLM inputs for the selection
  (``GroundingPipeline.clip_selection_tokens``: for GLaMM, the projector outputs at the selected indices, or
  the projection of the selection's merged features, for VisionZip): :func:`clip_stage`, :func:`clip_side`.
* a method acting with the LLM (``INPUT_STAGE``, ``LAYER_STAGE``, ``STAGES_STAGE``: ``none``, ``fastv``,
  ``sparsevlm``, ...): its ``select`` gets an ``LLMContext``; its ``forward``, if any, runs the LLM on what it
  kept: :func:`llm_stage`.

:func:`stage_inputs` runs the step the method's stage picks, under the run's position rule.
"""

from __future__ import annotations

import inspect

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..llm.positions_pad import pad_inputs
from ..method import Method
from ..pruning import Selection
from ..pruning.run import check_selector, checked


def stage_inputs(pipe, prepared, method: str, spec: Method, budget: int, full: torch.Tensor | None,
                 positions: str, rule: str, **options) -> tuple:
    """The method's stage step (``spec.stage.step_of(pipe)``: the stage's ``step`` function on ``pipe``; the
    LLM inputs, the selection, the visual-token indices they stand for when they keep their positions, the LLM
    output or None) under ``rule``; ``pad``
    takes the step's ``keep`` indices and adds one marker per dropped run
    (:func:`~litelvlm.llm.positions_pad.pad_inputs`)."""
    step = spec.stage.step_of(pipe)
    vis, sel, kept, out = step(prepared, method, budget, full, spec=spec,
                               rule="keep" if rule == "pad" else rule, positions=positions,
                               given=full is not None, **options)
    if rule != "pad" or out is not None:
        return vis, sel, kept, out
    if kept is None:
        raise LiteLVLMError(f"positions='pad': {method} on the {pipe.family} family passes LLM inputs that "
                            "stand for no single visual token each (e.g. pooled frames), so its dropped runs "
                            "have no original positions")
    tokens = pipe.visual_tokens(prepared) if full is None else full
    vis, kept = pad_inputs(vis, kept, tokens)
    return vis, sel, kept, out


def clip_side(pipeline, prepared, spec: Method, budget: int, full: torch.Tensor | None, *,
              visual_embeds_given: bool = False, **options) -> tuple[torch.Tensor, Selection]:
    """(K, h) LLM inputs and the selection of the CLIP-side method ``spec`` (the method ``ground`` looked up,
    handed down); ``full`` are the (N, h) projector outputs to gather from (None: computed here).
    ``visual_embeds_given``: ``full`` was given by the caller (to differentiate w.r.t. it), so a method that
    merges CLIP features is refused. The [CLS]-attention methods (those whose ``select`` takes an
    ``attention`` option: ``official`` / ``project``, see litelvlm.pruning.scores) compute their attention as
    the official code (``attention="official"``) unless the pipeline's numerics score in float32
    (``Numerics.project()``), which keeps the earlier ``attention="project"``. ``budget`` is K, counted by
    ``ground``; the kernel runs here, after the contract's checks
    (:func:`~litelvlm.pruning.run.check_selector`,
    :func:`~litelvlm.pruning.run.checked`)."""
    if "attention" in inspect.signature(spec.select).parameters and "attention" not in options:
        numerics = pipeline.numerics
        if numerics is not None and numerics.score_dtype == "float32":
            options["attention"] = "project"
    inputs = prepared.selector_inputs()
    check_selector(spec, inputs)
    sel = checked(spec, spec.select(inputs, budget, **options), budget)
    if sel.features is not None and full is not None and visual_embeds_given:  # merged tokens (VisionZip)
        raise LiteLVLMError(f"method {spec.name!r} merges CLIP features, so its LLM inputs are not rows of "
                            "the given visual_embeds; differentiate w.r.t. the CLIP features instead")
    return pipeline.clip_selection_tokens(prepared, sel, full), sel


def clip_stage(pipeline, prepared, method: str, budget: int, full: torch.Tensor | None, *, spec: Method,
               rule: str, given: bool = False, positions: str = "official", **options) -> tuple:
    """``ground``'s step for a CLIP-side method (:data:`~litelvlm.method_stage.CLIP_STAGE`): (its (K, h) LLM
    inputs, its selection, the visual-token indices they stand for when they keep their positions (``rule``
    ``keep``), None)."""
    vis, sel = clip_side(pipeline, prepared, spec, budget, full, visual_embeds_given=given, **options)
    return vis, sel, pipeline.clip_selection_rows(prepared, sel) if rule == "keep" else None, None


def llm_stage(pipeline, prepared, method: str, budget: int, full: torch.Tensor | None, *, spec: Method,
              rule: str, positions: str = "official", given: bool = False, **options) -> tuple:
    """``ground``'s step for a method acting with the LLM: its ``select`` on an ``LLMContext``, then its
    ``forward`` (a method pruning inside the LLM); (the LLM inputs, the selection, the kept indices when they
    keep their positions, None) for a selection applied at the LLM input, (None, the selection, None, (final,
    rows)) otherwise."""
    n = pipeline.num_visual(prepared)
    if spec.tower_tokens is not None:  # composed with a tower rule that gives every token back (IPCV)
        if given:
            raise LiteLVLMError(f"{method} computes its visual tokens in the vision tower, so it cannot "
                                "take given visual_embeds")
        full = spec.tower_run(pipeline.tower_context(prepared), budget, **options)
    full = pipeline.visual_tokens(prepared) if full is None else full
    ctx = LLMContext(pipeline, prepared, full, None if positions == "official" else positions)
    sel = spec.select(ctx, budget, **options)
    llm_output = None if spec.forward is None else spec.forward(ctx, sel)
    if llm_output is not None:
        return None, sel, None, llm_output
    if len(sel) != budget and not (sel.short and len(sel) < budget):  # applied at the LLM input
        raise AssertionError(f"{method} returned {len(sel)} tokens for budget {budget}")
    if sel.features is not None and spec.original_positions:
        raise LiteLVLMError(f"{method}: its selection carries merged tokens, so the method must declare "
                            "original_positions=False")
    if sel.features is not None:  # merged visual tokens (a variant merging the family's own tokens)
        vis = sel.features
    else:
        vis = full if sel.keeps_all(n) else full[sel.indices.to(full.device)]
    return vis, sel, sel.indices if rule == "keep" else None, None
