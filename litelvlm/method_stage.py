"""Where a pruning method acts, as an object (:class:`Stage`): its name in :data:`STAGES` and the typed
answers the pipeline and the studies ask instead of comparing names, with the pipeline's own step for it
(:meth:`Stage.step_of`). A :class:`~litelvlm.method.Method` declares its stage. This module imports nothing
heavy."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .errors import LiteLVLMError

#: Where a method acts, and what its ``select`` receives.
STAGES = {
    "clip": "on CLIP's visual tokens, before the LLM: select(SelectorInputs, K) -> Selection",
    "llm-input": "chosen with the LLM (or its input embeddings), applied at the LLM input: "
                 "select(LLMContext, K) -> Selection",
    "llm-layer": "inside the LLM, from one decoder layer on: select(LLMContext, K) -> Selection, then "
                 "forward(LLMContext, Selection)",
    "llm-stages": "inside the LLM, over several stages: select(LLMContext, K) -> Selection, then "
                  "forward(LLMContext, Selection)",
    "vision-tower": "inside the family's vision tower, between its encoder blocks: select(TowerContext, K) "
                    "-> Selection; the tower finishes on the kept tokens (Selection.features: its output for "
                    "them)",
}


class Stage(str):
    """Where a method acts, as an object: its name in :data:`STAGES` (a Stage compares, prints and is written
    as that name, so tables and configs read as before) and the typed answers the pipeline and the studies ask
    instead of comparing names. :meth:`step_of` gives the pipeline's own step for it
    (``GroundingPipeline.run_llm_stage``; CLIP's stage ``run_clip_stage``; the tower stage's is its own
    :meth:`run`), a function each stage class returns, which ``ground`` calls, so no caller branches on a
    stage."""

    NAME = ""
    #: selects on CLIP's visual tokens before the LLM (``select(SelectorInputs, K)``; ``kind`` ``clip``)
    acts_on_clip: bool = False
    #: chosen with the LLM's input embeddings (or the unpruned LLM), applied at the LLM input
    selects_at_llm_input: bool = False
    #: prunes inside the LLM, with a ``forward`` of its own
    prunes_inside_llm: bool = False
    #: prunes once, from one decoder layer on (FastV's and DART's K)
    prunes_at_one_layer: bool = False
    #: prunes between the blocks of the family's own vision tower (``select(TowerContext, K)``), which
    #: finishes on the kept tokens; it needs the grounding model (kind ``llm``), and a family offering the
    #: stage
    prunes_in_vision_tower: bool = False

    def __new__(cls, name: str | None = None) -> Stage:
        if name is not None and name != cls.NAME:
            raise ValueError(f"{cls.__name__} is stage {cls.NAME!r}; got {name!r}")
        return super().__new__(cls, cls.NAME)

    def __reduce__(self):
        return stage_of, (str(self),)

    @property
    def acts_with_llm(self) -> bool:
        """Whether the method needs the grounding model (its LLM, or its vision tower for the tower stage):
        every stage but CLIP's (``kind`` ``llm``)."""
        return not self.acts_on_clip

    @property
    def kind(self) -> str:
        """``clip`` or ``llm`` (:attr:`acts_with_llm`)."""
        return "clip" if self.acts_on_clip else "llm"

    @property
    def description(self) -> str:
        """What the method's ``select`` receives at this stage (:data:`STAGES`)."""
        return STAGES[self.NAME]

    def step_of(self, pipeline: Any) -> Callable[..., tuple]:
        """The step of ``pipeline``'s ``ground`` for this stage: its ``run_llm_stage`` (CLIP's stage: its
        ``run_clip_stage``; the tower stage: its own :meth:`run`)."""
        return pipeline.run_llm_stage

    def run(self, pipeline: Any, prepared: Any, method: str, budget: int, full: Any, **kw: Any) -> tuple:
        """The pipeline's step for this stage (:meth:`step_of`): (LLM inputs or None, Selection, kept indices
        or None, LLM output or None) of ``method`` keeping ``budget`` (K, already counted) tokens."""
        return self.step_of(pipeline)(prepared, method, budget, full, **kw)


class ClipStage(Stage):
    """On CLIP's visual tokens, before the LLM."""

    NAME = "clip"
    acts_on_clip = True

    def step_of(self, pipeline: Any) -> Callable[..., tuple]:
        return pipeline.run_clip_stage


class InputStage(Stage):
    """Chosen with the LLM (or its input embeddings), applied at the LLM input."""

    NAME = "llm-input"
    selects_at_llm_input = True


class LayerStage(Stage):
    """Inside the LLM, from one decoder layer on."""

    NAME = "llm-layer"
    prunes_inside_llm = True
    prunes_at_one_layer = True


class StagesStage(Stage):
    """Inside the LLM, over several stages."""

    NAME = "llm-stages"
    prunes_inside_llm = True


class TowerStage(Stage):
    """Inside the family's vision tower, between its encoder blocks (``GroundingPipeline.tower_context``: a
    :class:`litelvlm.pruning.tower.TowerContext`): the method's ``select`` runs the tower, choosing after each
    block which tokens go on; the LLM receives the tower's output on the kept ones. Its step, here, is the
    same for every family."""

    NAME = "vision-tower"
    prunes_in_vision_tower = True

    def step_of(self, pipeline: Any) -> Callable[..., tuple]:
        return functools.partial(self.run, pipeline)

    def run(self, pipeline: Any, prepared: Any, method: str, budget: int, full: Any, *, spec: Any,
            rule: str, given: bool = False, positions: str = "official", **options: Any) -> tuple:
        """(the (K, h) LLM inputs, the selection, the visual-token indices they stand for when they keep their
        positions (``rule`` ``keep``), None) of a tower-stage method."""
        if given:
            raise LiteLVLMError(f"{method} prunes inside the vision tower, so its LLM inputs are no rows of "
                                "the given visual_embeds")
        ctx = pipeline.tower_context(prepared)
        sel = spec.select(ctx, budget, **options)
        if len(sel) != budget or sel.features is None or len(sel.features) != budget:
            raise AssertionError(f"{method} returned {len(sel)} tokens for budget {budget} (with their tower "
                                 "features)")
        vis, rows = ctx.llm_inputs(sel)
        return vis, sel, rows if rule == "keep" else None, None


#: every stage object by its name
STAGE_TYPES: dict[str, Stage] = {s.NAME: s()
                                 for s in (ClipStage, InputStage, LayerStage, StagesStage, TowerStage)}


def stage_of(name: str | Stage) -> Stage:
    """The :class:`Stage` named ``name`` (a Stage as it is)."""
    if name not in STAGE_TYPES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {name!r}")
    return STAGE_TYPES[name]
