"""CLIP backends behind one interface: ``load_clip(model, backend)``.

Model strings:

* hf backend: a hub id (``openai/clip-vit-large-patch14-336``, the default) or a local
  ``save_pretrained`` directory;
* open_clip backend: ``ARCH:TAG`` (``ViT-L-14-336:openai``), ``ARCH:/path/ckpt.pt``,
  ``local-dir:/path`` or ``hf-hub:org/name``;
* ``tiny-random[:SEED]`` / ``vit-l-14-336-random[:SEED]``: a random model of that
  architecture, written to the cache folder and loaded back through the real path.

Importing this package imports torch; the backends (transformers: ``litelvlm.clip.hf.HFClip``,
open_clip: ``litelvlm.clip.openclip.OpenClip``) are imported when a model of theirs is loaded. A model that
cannot be loaded (a missing or empty folder, a config without ``model_type``, truncated weights, a checkpoint
of another architecture, an unknown name) is a :class:`~litelvlm.errors.LiteLVLMError` naming it.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import LiteLVLMError
from ..models.family_card import Lazy
from ..models.model_folder import SCHEMAS, check_model_folder, read_config
from ..models.model_spec import DEFAULT_HF_MODEL, ModelSpec
from ..models.random_models import cached_random_folder
from ..models.resolved_clip import ResolvedClip, resolve_clip
from ..switches import CLIP_BACKENDS
from .base import ClipBackend
from .deferred import DeferredClip, description_path, read_description, save_description
from .traces import HOOK_POINTS, Geometry, TextTrace, VisionTrace, attention_rows, hook_point

#: each backend's class, its module (transformers or open_clip, seconds to import) imported when a load needs
#: it
BACKENDS: dict[str, Lazy[type]] = {"hf": Lazy("litelvlm.clip.hf", "HFClip"),
                                   "open_clip": Lazy("litelvlm.clip.openclip", "OpenClip")}
#: each backend's writer of a random CLIP folder (its module imports transformers and open_clip)
RANDOM_WRITERS: dict[str, Lazy] = {"hf": Lazy("litelvlm.clip.random_init", "save_random_hf_clip"),
                                   "open_clip": Lazy("litelvlm.clip.random_init", "save_random_open_clip")}

__all__ = ["HOOK_POINTS", "ClipBackend", "Geometry", "TextTrace", "VisionTrace", "attention_rows",
           "hook_point", "load_clip", "DEFAULT_HF_MODEL", "DeferredClip", "resolve_random_model"]


def resolve_random_model(model: str | ModelSpec, backend: str, verify: bool = True) -> str | None:
    """For ``<arch>-random[:SEED]`` strings, write (once) and return the random model's path (checked against
    its checksums first; ``verify=False``: its file sizes only, for a caller that reads no weights now)."""
    spec = ModelSpec.of(model)
    if spec.random_clip is None:
        return None

    seed_i = spec.random_seed()

    def write(folder: Path) -> None:
        save = RANDOM_WRITERS["hf" if backend == "hf" else "open_clip"].get()
        save(folder, spec.random_clip, seed_i)

    # written aside and renamed: a concurrent process never reads a half-written folder
    root = cached_random_folder(f"{spec.name}-{backend}-seed{seed_i}", write, verify=verify)
    return str(root) if backend == "hf" else f"local-dir:{root}"


def _check_folder(model: str, backend: str, config: dict | None = None) -> None:
    """Refuse, before any import, a model folder that cannot hold a model: empty; (hf) without
    ``config.json``, or with one that is not an object, lacks ``model_type`` or holds a key of the wrong type,
    or without the tokenizer or image-processor files; (open_clip) with an ``open_clip_config.json`` of the
    wrong types. ``config``: the folder's ``config.json`` as its resolution read it (not read again)."""
    folder = ModelSpec.of(model).folder
    if not os.path.isdir(folder):
        return
    if not any(Path(folder).iterdir()):
        raise LiteLVLMError(f"model folder {folder!r} is empty")
    if backend != "hf":
        if (Path(folder) / SCHEMAS["open_clip"].config).is_file():
            check_model_folder(folder, "open_clip")
        return
    cfg = Path(folder) / "config.json"
    if not cfg.is_file():
        raise LiteLVLMError(f"model folder {folder!r} has no config.json (a save_pretrained folder is "
                            "expected)")
    config = read_config(folder) if config is None else config
    model_type = config.get("model_type")
    if model_type is None:
        raise LiteLVLMError(f"model {folder!r}: {cfg} has no 'model_type' (not a transformers model folder)")
    if model_type == "clip":   # another model type is refused by name when loaded (UnsupportedModelError)
        check_model_folder(folder, "clip", config)   # the keys' types, tokenizer and image-processor files


def _one_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, shortened (loader errors can list hundreds of keys)."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0].strip()
    return (text[:limit] + " ...") if len(text) > limit else text


def load_clip(model: str | ResolvedClip = DEFAULT_HF_MODEL, backend: str | None = None,
              device: Any = "cpu", dtype: Any = None, defer: bool = False) -> Any:
    """Load a CLIP model (a :class:`ClipBackend`) through transformers (``backend="hf"``) or open_clip
    (``"open_clip"``); ``dtype`` defaults to float32.

    Without ``backend``, open_clip-style strings (``local-dir:``, ``ARCH:TAG``, a folder with
    ``open_clip_config.json``) go to open_clip and everything else to transformers. With ``defer``,
    a model with local files that was loaded this way before comes back as a
    :class:`~litelvlm.clip.deferred.DeferredClip`, loaded on first use (see that module).
    """
    resolved_clip = resolve_clip(model)   # its folder's config.json read once (none read again here)
    spec, model = resolved_clip.spec, resolved_clip.text
    backend = backend or resolved_clip.backend
    if backend not in CLIP_BACKENDS:
        raise LiteLVLMError(f"unknown backend {backend!r}; choose {' or '.join(map(repr, CLIP_BACKENDS))}")
    if spec.random_clip is not None:
        spec.random_seed()  # a bad seed is refused before anything is written

    # a deferred load reads no weights until its first use (a load without defer, which verifies them then)
    resolved = resolve_random_model(spec, backend, verify=not defer) or spec
    _check_folder(resolved, backend, resolved_clip.config if resolved is spec else None)
    if backend == "open_clip" and os.path.isdir(resolved):
        resolved = f"local-dir:{resolved}"
    dtype = torch.float32 if dtype is None else dtype
    saved = None
    if defer:
        saved = description_path(model, resolved, backend, dtype)
        record = read_description(saved) if saved is not None else None
        if record is not None:
            return DeferredClip(model, backend, record, saved,
                                functools.partial(load_clip, model, backend, device=device, dtype=dtype))
        resolve_random_model(spec, backend)  # loaded now: the random model's checksums first
    cls = BACKENDS["hf" if backend == "hf" else "open_clip"].get()
    try:
        clip = cls(resolved, device=device, dtype=dtype)
    except LiteLVLMError:
        raise
    except Exception as e:  # noqa: BLE001 - the loaders' errors for broken weights vary by library
        # A truncated safetensors file (SafetensorError), a checkpoint of another architecture
        # (RuntimeError, AssertionError), ...: one line naming the model; -v logs the traceback.
        logging.getLogger(__name__).debug("loading %r failed", model, exc_info=True)
        raise LiteLVLMError(
            f"CLIP model {model!r} could not be loaded: {type(e).__name__}: {_one_line(e)}") from e
    refuse_non_finite(clip.model, f"CLIP model {model!r}")
    clip.name = model
    if saved is not None:
        save_description(clip, saved)
    return clip


def refuse_non_finite(module: Any, what: str, skip: str | None = None) -> None:
    """A ``LiteLVLMError`` naming ``what`` and its first parameter holding NaN or infinity: such weights
    give NaN scores, and a NaN sorts like any number, so a study would write tables that look fine.
    Parameters whose name contains ``skip`` are not read (weights the computation never uses)."""
    named = [(name, p) for name, p in getattr(module, "named_parameters", lambda: [])()
             if not (skip and skip in name) and p.is_floating_point()]
    groups: dict[tuple, list] = {}
    for _, p in named:
        groups.setdefault((p.device, p.dtype), []).append(p)
    # one norm per tensor in one call per group: NaN or infinity makes it non-finite (so may huge finite
    # values, which the loop below then reads one by one)
    if all(torch.stack(torch._foreach_norm(ps)).isfinite().all() for ps in groups.values()):
        return
    for name, p in named:
        if not torch.isfinite(p).all():
            raise LiteLVLMError(f"{what} has non-finite weights (NaN or infinity) in {name!r}")
