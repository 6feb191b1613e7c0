"""The one way the suite imports an optional package: by name, when a run first needs it, with an error naming
the extra that installs it. The ``quantize`` extra (bitsandbytes, torchao), the ``notebooks`` extra (nbformat,
papermill, ipywidgets, jupyterlab) and psutil (read where installed) are never imported at a module's top, so
every module imports without them (tests/project/test_wiring.py lists the callers)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import LiteLVLMError

#: optional package -> the extra of ``pyproject.toml`` that installs it (None: no extra, the caller falls
#: back)
EXTRAS: dict[str, str | None] = {"bitsandbytes": "quantize", "torchao": "quantize", "nbformat": "notebooks",
                                 "papermill": "notebooks", "ipywidgets": "notebooks",
                                 "jupyterlab": "notebooks", "psutil": None}


class MissingOptional(LiteLVLMError, ImportError):
    """An optional package is not installed (an ``ImportError`` too, so a caller's fallback still catches
    it)."""


def optional_import(name: str) -> ModuleType:
    """The module ``name`` (a package of :data:`EXTRAS` or one of its submodules), imported now."""
    top = name.split(".")[0]
    if top not in EXTRAS:
        raise ValueError(f"{top!r} is not an optional package of litelvlm ({', '.join(EXTRAS)})")
    try:
        return importlib.import_module(name)
    except ImportError as e:
        extra = EXTRAS[top]
        hint = f": pip install 'litelvlm[{extra}]'" if extra else ""
        raise MissingOptional(f"{name} is not installed{hint}") from e


__all__ = ["EXTRAS", "MissingOptional", "optional_import"]
