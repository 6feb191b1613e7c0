"""Notes on figures that the family drawings call through ``plots`` (defined in :mod:`analysis.style`)."""

from __future__ import annotations

from ..style import label_weights

__all__ = ["label_weights"]
