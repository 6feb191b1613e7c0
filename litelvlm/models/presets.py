"""A family's named sizes: the one lookup of a preset by name that every family's ``get_preset`` is.

Each family (and each backbone of one) keeps its presets in a ``PRESETS`` dict of frozen dataclasses and
looks a name up with :func:`named_preset`, so an unknown name reads the same everywhere: ``unknown <family>
preset '<name>'; known: <the names, sorted>``. This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from ..errors import LiteLVLMError

P = TypeVar("P")


def named_preset(presets: Mapping[str, P], name: str | P, kind: type[P], what: str,
                 noun: str = "preset") -> P:
    """``presets[name]``, or ``name`` itself when it is a ``kind`` already; an unknown name is an error
    listing the known ones (``what`` names the family, ``noun`` what its presets are called)."""
    if isinstance(name, kind):
        return name
    if name not in presets:
        raise LiteLVLMError(f"unknown {what} {noun} {name!r}; known: {', '.join(sorted(presets))}")
    return presets[name]


__all__ = ["named_preset"]
