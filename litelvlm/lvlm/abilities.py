"""What a model family offers the methods and the studies, declared once as data: :class:`Abilities`.

A family's pipeline sets ``abilities = Abilities(...)`` on its class
(:class:`litelvlm.lvlm.family.GroundingPipeline`); the contract's shared code (``ground``, ``method_error``,
the studies) reads it, also from the class before any weights load. Its own imports are the standard
library's; its package (:mod:`litelvlm.lvlm`) loads torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

#: what a family's mask head reads at the rows predicting each [SEG]: the LLM's final normed hidden states
#: (GLaMM's ``output_hidden_states[-1]``), or the input of the LLM's final norm (UniPixel's
#: ``cache_state_hook``)
SEG_READS = ("final", "norm_input")
#: what a family's ``ground`` budget counts: ``visual``, K of the N visual tokens the LLM receives; ``frame``,
#: K of each frame's CLIP patches (a video family, whose LLM-side step has its own rule for K)
BUDGET_UNITS = ("visual", "frame")
#: how CLIP-side methods reach the family's LLM: ``patches`` (its visual tokens are CLIP's patches, mapped by
#: ``clip_selection_tokens``), ``mapped`` (an external CLIP's per-token scores mapped onto the family's own
#: tokens,
#: :class:`~litelvlm.pruning.MappedInputs`: the methods reading scores alone run), ``none`` (no CLIP is
#: paired)
CLIP_SIDES = ("patches", "mapped", "none")


@dataclass(frozen=True)
class Abilities:
    """One family's abilities (the defaults are GLaMM's: LLaVA-1.5's CLIP patches, 1-D RoPE, the final
    states).

    ``position_axes``: 1 (1-D RoPE, positions (1, S)) or 3 (M-RoPE, (3, 1, S)). ``position_rule``: the
    family's own rule for kept tokens' positions, which ``ground(positions="official")`` means on it (None:
    each method's ``Method.positions``, written for LLaVA's 1-D RoPE). ``sentences_per_prompt``: sentences one
    prompt holds under the family's protocol (None: the study's ``--protocol`` decides). ``backbone``: the
    LVLM it is built on, as
    :data:`litelvlm.methods.VARIANTS` keys a method's variant ("": LLaVA-1.5's). ``answers``: the answers its
    prompts offer (``teacher-forced``, and ``generate`` where the official protocol generates).
    ``own_metric``: the name of its official referring-segmentation metric ("": GLaMM's alone). ``refuses``:
    the family's own refusals, a ``Method`` flag (``reads_clip``) or a method's name -> the reason
    (``{method}`` is filled in)."""

    seg_reads: str = "final"
    position_axes: int = 1
    position_rule: str | None = None
    clip_side: str = "patches"
    sentences_per_prompt: int | None = None
    backbone: str = ""
    answers: tuple[str, ...] = ("teacher-forced",)
    budget_unit: str = "visual"
    own_metric: str = ""
    refuses: Mapping[str, str] = field(default_factory=dict)
    #: the family runs methods between its vision tower's blocks (``Method.prunes_in_vision_tower``,
    #: ``GroundingPipeline.tower_context``)
    tower_stage: bool = False

    def __post_init__(self) -> None:
        for name, value, allowed in (("seg_reads", self.seg_reads, SEG_READS),
                                     ("budget_unit", self.budget_unit, BUDGET_UNITS),
                                     ("clip_side", self.clip_side, CLIP_SIDES),
                                     ("position_axes", self.position_axes, (1, 3)),
                                     ("position_rule", self.position_rule, (None, "keep", "renumber"))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")
        if "teacher-forced" not in self.answers:
            raise ValueError(f"answers must offer 'teacher-forced'; got {self.answers!r}")
        object.__setattr__(self, "answers", tuple(self.answers))
        object.__setattr__(self, "refuses", MappingProxyType(dict(self.refuses)))


def refusal(spec: Any, method: str, refuses: Mapping[str, str]) -> str | None:
    """The first reason of ``refuses`` (a ``Method`` flag or a method's name -> reason) that applies to
    ``method`` (its :class:`~litelvlm.method.Method` ``spec``), None when none does."""
    for key, why in refuses.items():
        if key == method or getattr(spec, key, None) is True:
            return why.format(method=method)
    return None


__all__ = ["BUDGET_UNITS", "CLIP_SIDES", "SEG_READS", "Abilities", "refusal"]
