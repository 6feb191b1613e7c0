"""The family contract: what a pixel-grounding LVLM gives the pruning methods and the studies.

* :mod:`litelvlm.lvlm.family`: ``GroundingPipeline`` (the contract a family's pipeline implements,
  :mod:`~litelvlm.lvlm.contract`'s ``FamilyContract``, and its one ``ground``), ``SequenceLayout``,
  ``GroundingOutput`` (:mod:`~litelvlm.lvlm.sequence`);
* :mod:`~litelvlm.lvlm.prune`: the step of ``ground`` that runs a method's stage;
  :mod:`~litelvlm.lvlm.generate`: the generated answer; :mod:`~litelvlm.lvlm.visual_view`: the visual tokens'
  grid and window;
* the numerics a family's forwards share: :mod:`~litelvlm.lvlm.numerics`, :mod:`~litelvlm.lvlm.upcast`,
  :mod:`~litelvlm.lvlm.fastest_dtype`.

The LLM run layer by layer is :mod:`litelvlm.llm`; the pruning methods, whatever their stage, are modules of
:mod:`litelvlm.methods`; the families are packages of their own (``litelvlm.glamm``), named in
:mod:`litelvlm.registry.families`.
"""

from ..llm.context import LLMContext
from .family import GroundingOutput, GroundingPipeline, SequenceLayout

__all__ = ["GroundingOutput", "GroundingPipeline", "LLMContext", "SequenceLayout"]
