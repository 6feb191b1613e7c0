"""Where a pruning method acts, as a value (:class:`Stage`): its name in :data:`STAGES`, the typed answers the
pipeline and the studies ask instead of comparing names, and the function that runs it (:attr:`Stage.step`).
A :class:`~litelvlm.method.Method` declares its stage by name. This module imports nothing heavy."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
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


def clip_step(pipeline: Any, prepared: Any, method: str, budget: int, full: Any, **kw: Any) -> tuple:
    """A CLIP-side method's step: the pipeline's ``run_clip_stage``."""
    return pipeline.run_clip_stage(prepared, method, budget, full, **kw)


def llm_step(pipeline: Any, prepared: Any, method: str, budget: int, full: Any, **kw: Any) -> tuple:
    """The step of a method acting with the LLM (at its input or inside it): the pipeline's
    ``run_llm_stage``."""
    return pipeline.run_llm_stage(prepared, method, budget, full, **kw)


def tower_step(pipeline: Any, prepared: Any, method: str, budget: int, full: Any, *, spec: Any, rule: str,
               given: bool = False, positions: str = "official", **options: Any) -> tuple:
    """A tower-stage method's step, the same for every family (``GroundingPipeline.tower_context``: a
    :class:`litelvlm.pruning.tower.TowerContext`): (the (K, h) LLM inputs, the selection, the visual-token
    indices they stand for when they keep their positions (``rule`` ``keep``), None)."""
    if given:
        raise LiteLVLMError(f"{method} prunes inside the vision tower, so its LLM inputs are no rows of "
                            "the given visual_embeds")
    ctx = pipeline.tower_context(prepared)
    sel = spec.select(ctx, budget, **options)
    count = ctx.num_tokens if spec.restores_tokens else budget
    if len(sel) != count or sel.features is None or len(sel.features) != count:
        raise AssertionError(f"{method} returned {len(sel)} tokens for budget {budget} (with their tower "
                             f"features; {count} expected)")
    # a tower that gives every token back (IPCV) returns the N LLM inputs, in the family's order
    vis, rows = (sel.features, sel.indices) if spec.restores_tokens else ctx.llm_inputs(sel)
    return vis, sel, rows if rule == "keep" else None, None


@dataclass(frozen=True)
class Stage:
    """Where a method acts: its ``name`` in :data:`STAGES` (written where a table or a message names the
    stage: ``str(stage)`` or ``stage.name``), the function ``step(pipeline, prepared, method, budget, full,
    **kw)`` that runs it, which ``ground`` calls (:meth:`run`), and the typed answers the pipeline and the
    studies ask instead of comparing names. The stages are the five values of :data:`STAGE_OBJECTS`."""

    name: str
    step: Callable[..., tuple]
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
    #: where a method of the stage acts, in the words a table or a refusal says it ("inside the LLM")
    where: str = ""

    def __post_init__(self) -> None:
        if self.name not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {self.name!r}")
        if not self.where:
            raise ValueError(f"stage {self.name!r}: say where its methods act (where)")

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple:
        return stage_of, (self.name,)

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
        return STAGES[self.name]

    def step_of(self, pipeline: Any) -> Callable[..., tuple]:
        """:attr:`step` bound to ``pipeline``: ``step_of(pipeline)(prepared, method, budget, full, **kw)``."""
        return functools.partial(self.step, pipeline)

    def run(self, pipeline: Any, prepared: Any, method: str, budget: int, full: Any, **kw: Any) -> tuple:
        """(LLM inputs or None, Selection, kept indices or None, LLM output or None) of ``method`` keeping
        ``budget`` (K, already counted) tokens: :attr:`step` on ``pipeline``."""
        return self.step(pipeline, prepared, method, budget, full, **kw)


#: on CLIP's visual tokens, before the LLM
CLIP_STAGE = Stage("clip", clip_step, acts_on_clip=True, where="on CLIP's visual tokens, before the LLM")
#: chosen with the LLM (or its input embeddings), applied at the LLM input
INPUT_STAGE = Stage("llm-input", llm_step, selects_at_llm_input=True, where="at the LLM's input")
#: inside the LLM, from one decoder layer on
LAYER_STAGE = Stage("llm-layer", llm_step, prunes_inside_llm=True, prunes_at_one_layer=True,
                    where="inside the LLM")
#: inside the LLM, over several stages
STAGES_STAGE = Stage("llm-stages", llm_step, prunes_inside_llm=True, where="inside the LLM")
#: inside the family's vision tower, between its encoder blocks: the method's ``select`` runs the tower,
#: choosing after each block which tokens go on; the LLM receives the tower's output on the kept ones
TOWER_STAGE = Stage("vision-tower", tower_step, prunes_in_vision_tower=True, where="inside the vision tower")

#: every stage by its name
STAGE_OBJECTS: dict[str, Stage] = {s.name: s
                                   for s in (CLIP_STAGE, INPUT_STAGE, LAYER_STAGE, STAGES_STAGE, TOWER_STAGE)}


def stage_of(name: str | Stage) -> Stage:
    """The :class:`Stage` named ``name`` (a Stage as it is)."""
    if isinstance(name, Stage):
        return name
    if name not in STAGE_OBJECTS:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {name!r}")
    return STAGE_OBJECTS[name]
