"""What every model family shares: the family contract and the LLM run layer by layer.

* :mod:`litelvlm.lvlm.family`: ``GroundingPipeline`` (the contract a family's pipeline implements),
  ``SequenceLayout``, ``GroundingOutput``;
* :mod:`litelvlm.lvlm.llm_context`: ``LLMContext`` (what an LLM-side method's ``select`` receives),
  layer-by-layer runs and attention rows.

The pruning methods, whatever their stage, are modules of :mod:`litelvlm.methods`.

The families themselves are packages of their own (``litelvlm.glamm``), named in :mod:`litelvlm.families`.
"""

from .family import GroundingOutput, GroundingPipeline, SequenceLayout
from .llm_context import LLMContext

__all__ = ["GroundingOutput", "GroundingPipeline", "LLMContext", "SequenceLayout"]
