"""CLIP backends behind one interface: ``load_clip(model, backend)``.

Model strings:

* hf backend: a hub id (``openai/clip-vit-large-patch14-336``, the default) or a local
  ``save_pretrained`` directory;
* open_clip backend: ``ARCH:TAG`` (``ViT-L-14-336:openai``), ``ARCH:/path/ckpt.pt``,
  ``local-dir:/path`` or ``hf-hub:org/name``;
* ``tiny-random[:SEED]`` / ``vit-l-14-336-random[:SEED]``: a random model of that
  architecture, written to the cache folder and loaded back through the real path.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import LiteLVLMError
from .base import HOOK_POINTS, ClipBackend, Geometry, TextTrace, VisionTrace, attention_rows, hook_point
from .hf import DEFAULT_HF_MODEL, HFClip
from .openclip import OpenClip

__all__ = ["HOOK_POINTS", "ClipBackend", "Geometry", "TextTrace", "VisionTrace", "attention_rows", "hook_point", "load_clip",
           "DEFAULT_HF_MODEL", "HFClip", "OpenClip", "resolve_random_model"]

_RANDOM = {"tiny-random": "tiny", "tiny336-random": "tiny-336", "vit-l-14-336-random": "vit-l-14-336"}


def resolve_random_model(model: str, backend: str) -> str | None:
    """For ``<arch>-random[:SEED]`` strings, write (once) and return the random model's path."""
    base, _, seed = model.partition(":")
    if base not in _RANDOM:
        return None
    from ..cache import default_cache_dir
    from .random_init import save_random_hf_clip, save_random_open_clip

    seed_i = int(seed or 0)
    root = default_cache_dir() / "random-models" / f"{base}-{backend}-seed{seed_i}"
    marker = root / ".complete"
    if not marker.exists():
        if backend == "hf":
            save_random_hf_clip(root, _RANDOM[base], seed_i)
        else:
            save_random_open_clip(root, _RANDOM[base], seed_i)
        marker.touch()
    return str(root) if backend == "hf" else f"local-dir:{root}"


def load_clip(model: str = DEFAULT_HF_MODEL, backend: str | None = None,
              device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> ClipBackend:
    """Load a CLIP model through transformers (``backend="hf"``) or open_clip (``"open_clip"``).

    Without ``backend``, open_clip-style strings (``local-dir:``, ``ARCH:TAG``, a folder with
    ``open_clip_config.json``) go to open_clip and everything else to transformers.
    """
    if backend is None:
        if model.startswith(("local-dir:", "hf-hub:")) or (
                os.path.isdir(model) and (Path(model) / "open_clip_config.json").exists()):
            backend = "open_clip"
        elif ":" in model and not model.split(":")[0].endswith("-random") and "/" not in model.split(":")[0]:
            backend = "open_clip"
        else:
            backend = "hf"
    if backend not in ("hf", "open_clip"):
        raise LiteLVLMError(f"unknown backend {backend!r}; choose 'hf' or 'open_clip'")
    resolved = resolve_random_model(model, backend) or model
    if backend == "open_clip" and os.path.isdir(resolved):
        resolved = f"local-dir:{resolved}"
    cls = HFClip if backend == "hf" else OpenClip
    clip = cls(resolved, device=device, dtype=dtype)
    clip.name = model
    return clip
