"""The GLaMM family: GLaMM (LLaVA-1.5 + SAM, mbzuai-oryx/groundingLMM) on current transformers, with token
pruning in the loop.

Its pipeline, :class:`GlammPipeline`, implements the model-family contract
(:class:`litelvlm.lvlm.family.GroundingPipeline`), so every method and study runs on it. Main entry
points: ``GlammPipeline`` (see ``litelvlm.glamm.pipeline``), ``build_glamm``, ``load_glamm_checkpoint``,
``save_glamm_checkpoint``, ``ARCHS``.
"""

from ..lvlm.family import GroundingOutput
from .build import build_glamm
from .checkpoint import load_glamm_checkpoint
from .checkpoint_writer import save_glamm_checkpoint, save_random_glamm
from .config import ARCHS, GlammArch, get_arch
from .model import GlammModel
from .pipeline import GlammPipeline, PreparedImage

__all__ = ["ARCHS", "GlammArch", "GlammModel", "GlammPipeline", "GroundingOutput", "PreparedImage",
           "build_glamm", "get_arch", "load_glamm_checkpoint", "save_glamm_checkpoint", "save_random_glamm"]
