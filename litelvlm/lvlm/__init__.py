"""The GLaMM pixel-grounding model on current transformers, with token pruning in the loop.

Importing this package registers the LLM-side methods (``fastv``, ``dart``, ``sparsevlm``, ``llm-attention``,
``saliency``) with ``litelvlm.pruning``. Main entry points: ``GlammPipeline`` (see ``litelvlm.lvlm.pipeline``),
``build_glamm``, ``load_glamm_checkpoint``, ``save_glamm_checkpoint``, ``ARCHS``.
"""

from . import dart, fastv, llm_attention, saliency, sparsevlm  # noqa: F401  (register the LLM-side methods)
from .build import build_glamm
from .checkpoint import load_glamm_checkpoint
from .checkpoint_writer import save_glamm_checkpoint, save_random_glamm
from .config import ARCHS, GlammArch, get_arch
from .llm_attention import LLMContext
from .model import GlammModel
from .pipeline import GlammPipeline, GroundingOutput, PreparedImage

__all__ = ["ARCHS", "GlammArch", "GlammModel", "GlammPipeline", "GroundingOutput", "LLMContext", "PreparedImage",
           "build_glamm", "get_arch", "load_glamm_checkpoint", "save_glamm_checkpoint", "save_random_glamm"]
