"""The GLaMM family: GLaMM (LLaVA-1.5 + SAM, mbzuai-oryx/groundingLMM) on current transformers, with token
pruning in the loop.

Its pipeline, :class:`GlammPipeline`, implements the model-family contract
(:class:`litelvlm.lvlm.family.GroundingPipeline`), so every method and study runs on it. Main entry
points: ``GlammPipeline`` (see ``litelvlm.glamm.pipeline``), ``build_glamm``, ``load_glamm_checkpoint``,
``save_glamm_checkpoint``, ``ARCHS``. Importing this package is light (its card is read before torch loads);
each name below imports its module on first use.
"""

from __future__ import annotations

from ..lazy import lazy_exports

#: name -> the submodule that defines it
_WHERE = {"GroundingOutput": "..lvlm.family", "build_glamm": ".build", "load_glamm_checkpoint": ".checkpoint",
          "save_glamm_checkpoint": ".checkpoint_writer", "save_random_glamm": ".checkpoint_writer",
          "ARCHS": ".config",
          "GlammArch": ".config", "get_arch": ".config", "GlammModel": ".model", "GlammPipeline": ".pipeline",
          "PreparedImage": ".pipeline"}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = ["ARCHS", "GlammArch", "GlammModel", "GlammPipeline", "GroundingOutput", "PreparedImage",
           "build_glamm", "get_arch", "load_glamm_checkpoint", "save_glamm_checkpoint", "save_random_glamm"]
