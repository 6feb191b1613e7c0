"""The GLaMM pixel-grounding model on current transformers, with token pruning in the loop.

The methods that act with the LLM (``none``, ``divprune``, ``fastv``, ``dart``, ``sparsevlm``, ``llm-attention``,
``saliency``) are declared in their modules here and named in :mod:`litelvlm.methods`. Main entry points: ``GlammPipeline`` (see ``litelvlm.lvlm.pipeline``),
``build_glamm``, ``load_glamm_checkpoint``, ``save_glamm_checkpoint``, ``ARCHS``.
"""

from .build import build_glamm
from .checkpoint import load_glamm_checkpoint
from .checkpoint_writer import save_glamm_checkpoint, save_random_glamm
from .config import ARCHS, GlammArch, get_arch
from .llm_attention import LLMContext
from .model import GlammModel
from .pipeline import GlammPipeline, GroundingOutput, PreparedImage

__all__ = ["ARCHS", "GlammArch", "GlammModel", "GlammPipeline", "GroundingOutput", "LLMContext", "PreparedImage",
           "build_glamm", "get_arch", "load_glamm_checkpoint", "save_glamm_checkpoint", "save_random_glamm"]
