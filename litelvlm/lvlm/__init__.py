"""What every model family shares: the family contract, the LLM run layer by layer, and the methods that
act with the LLM.

* :mod:`litelvlm.lvlm.family`: ``GroundingPipeline`` (the contract a family's pipeline implements; what the family
  offers is one :class:`~litelvlm.lvlm.abilities.Abilities`), ``SequenceLayout``, ``GroundingOutput``;
* :mod:`litelvlm.lvlm.llm_attention`: ``LLMContext`` (what an LLM-side method's ``select`` receives),
  layer-by-layer runs and attention rows;
* the methods that act with the LLM (``none``, ``divprune``, ``fastv``, ``dart``, ``sparsevlm``, ``vscan``,
  ``llm-attention``, ``saliency``), each declared in its module here and named in :mod:`litelvlm.methods`.

The families themselves are packages of their own (``litelvlm.glamm``), named in :mod:`litelvlm.families`.
"""

from .family import GroundingOutput, GroundingPipeline, SequenceLayout
from .llm_attention import LLMContext

__all__ = ["GroundingOutput", "GroundingPipeline", "LLMContext", "SequenceLayout"]
