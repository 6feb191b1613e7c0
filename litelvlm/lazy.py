"""A typed reference to a piece of code imported on first use (:class:`Lazy`), and the one place such a
reference is imported (:func:`resolve`); a package's names imported on first use (:func:`lazy_exports`).

A light module (a family card, the method registry, the subcommand tables, read by ``litelvlm --help`` before
torch loads) names a heavy piece as ``Lazy("package.module", "attribute")``: two fields, checked when the
reference is made; ``tests/project/test_typed_wiring.py`` resolves every reference of the code, so a typo
fails the suite instead of a run. This module imports nothing heavy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")


class _Reference(NamedTuple):
    module: str
    attribute: str | None = None


class Lazy(_Reference, Generic[T]):
    """A piece that imports heavy code (a family's pipeline class, its video path, its cost description), or a
    package that does (its protocol, its question templates: their packages import numpy, PIL or torch), or an
    entry of a registry that imports on first use (a method, a subcommand's module): ``attribute`` of
    ``module`` (None: the module itself), imported on first use by :meth:`get` (:func:`resolve`). An immutable
    pair (a named tuple: light to define, which ``litelvlm --help`` pays), its fields checked when it is
    made."""

    __slots__ = ()

    def __new__(cls, module: str, attribute: str | None = None) -> Lazy:
        if not all(part.isidentifier() for part in module.split(".")) or not (
                attribute is None or attribute.isidentifier()):
            raise ValueError(f"Lazy needs a dotted module name and an attribute name (or None); got "
                             f"module={module!r}, attribute={attribute!r}")
        return super().__new__(cls, module, attribute)

    @classmethod
    def named(cls, target: str) -> Lazy:
        """The piece ``"module:attribute"`` (or ``"module"``) names."""
        module, attr = target.split(":") if ":" in target else (target, None)
        return cls(module, attr or None)

    def get(self) -> T:
        """The piece itself (its module imported now, once per process): :func:`resolve`."""
        return resolve(self)

    def __str__(self) -> str:
        return self.module if self.attribute is None else f"{self.module}:{self.attribute}"


def resolve(ref: Lazy[T]) -> T:
    """What ``ref`` names: the one place a card's pieces, the registered cards, the methods and the
    subcommands' modules are imported."""
    module = importlib.import_module(ref.module)
    return module if ref.attribute is None else getattr(module, ref.attribute)


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` (PEP 562): each name of ``where`` imported on first use from the
    module it maps to (relative to ``package`` or absolute), any other name an ``AttributeError``."""
    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name], package), name)

    return __getattr__


__all__ = ["Lazy", "lazy_exports", "resolve"]
