"""Heavy modules imported on first use, so that parsing a subcommand's options stays fast.

``torch = lazy_module("torch")`` at the top of a module costs nothing; the first attribute read
(``torch.zeros``) imports torch and every later read is an ordinary lookup. A bad argument is
then refused in well under a second instead of after several seconds of importing torch,
pandas, scipy or transformers. ``no_grad`` is ``@torch.no_grad()`` for module-level functions
without importing torch when the module is imported.
"""

from __future__ import annotations

import functools
import importlib
import types
from collections.abc import Callable
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module ``name``; imports it at the first attribute read."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__dict__["_lazy_target"])
        # Later reads of the names the module has now find them here without another call.
        self.__dict__.update({k: v for k, v in vars(module).items() if k not in ("__name__", "__spec__")})
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_lazy_target']!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for ``import name`` that imports ``name`` when one of its attributes is first read."""
    return LazyModule(name)


def no_grad(fn: Callable) -> Callable:
    """``@torch.no_grad()`` for a function, without importing torch until the function is called."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper
