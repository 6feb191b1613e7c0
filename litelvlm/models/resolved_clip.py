"""A model string of no family's, resolved as a CLIP: its backend, its folder and the folder's ``config.json``
as read once, which the CLIP loader checks instead of reading it again. The families' resolution
(:func:`litelvlm.registry.resolved_model.resolve_in` with ``clip=True``) makes it where a command's
``--model`` takes a family's model or a CLIP; :func:`resolve_clip` is the same resolution's CLIP branch, for
the CLIP loader handed a plain string. This module imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError
from .model_folder import read_config
from .model_spec import ModelSpec


@dataclass(frozen=True)
class ResolvedClip:
    """A model string of no family's, resolved as a CLIP by the same resolution
    (:func:`litelvlm.registry.resolved_model.resolve_in` with ``clip=True``): ``spec`` (the string as read),
    ``backend`` (``open_clip`` for an open_clip-style string or a folder holding ``open_clip_config.json``,
    else ``hf``), ``path`` (its local folder; None for a hub id, an open_clip tag or a random CLIP) and
    ``config`` (the folder's ``config.json`` as read once, which the CLIP loader checks instead of reading it
    again; None where there is none). Written as its :attr:`text`."""

    spec: ModelSpec
    backend: str
    path: Path | None = None
    config: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple:
        return clip_of, (self.text,)

    @property
    def text(self) -> str:
        """The model string as written (a plain str)."""
        return self.spec.text

    @property
    def folder(self) -> str:
        """The path the string names, if it is a folder (:attr:`ModelSpec.folder`)."""
        return self.spec.folder


def clip_of(model: str | ModelSpec, config: dict[str, Any] | None = None) -> ResolvedClip:
    """``model`` as a CLIP: its backend and folder; ``config``: its folder's ``config.json`` as the resolution
    read it (None: none was read)."""
    spec = ModelSpec.of(model)
    folder = Path(spec.folder)
    local = folder.is_dir()
    backend = "open_clip" if spec.open_clip_style or (local and (folder / "open_clip_config.json").exists()) \
        else "hf"
    return ResolvedClip(spec, backend, folder if local else None, config)


def resolve_clip(model: str | ModelSpec | ResolvedClip) -> ResolvedClip:
    """``model`` resolved as a CLIP (a resolved one as it is): its folder's ``config.json`` read once (one
    that cannot be read is left to the loader's check, which names why)."""
    if isinstance(model, ResolvedClip):
        return model
    spec = ModelSpec.of(model)
    folder, config = Path(spec.folder), None
    if (folder / "config.json").is_file():
        try:
            config = read_config(folder)
        except LiteLVLMError:
            config = None
    return clip_of(spec, config)


__all__ = ["ResolvedClip", "clip_of", "resolve_clip"]
