"""Installed library versions, read from the distributions' metadata (nothing is imported)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

import numpy
import torch

from .. import __version__


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (``"open_clip_torch"``, ...), or None if absent."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def run_versions() -> dict[str, str | None]:
    """The versions a results folder's ``config.json`` records (torch as ``torch.__version__`` reports it)."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": dist_version("transformers"), "open_clip": dist_version("open_clip_torch"),
            "numpy": numpy.__version__, "pandas": dist_version("pandas"), "litelvlm": __version__}
