"""Defaults more than one study shares (light: imports nothing)."""

from __future__ import annotations

#: The default k of every top-k statistic: the Jaccard overlaps of ``importance``, the lowest/highest-k inside
#: shares of ``reversal`` and the sink ablation (GLaMM and LLaVA-1.5 have 576 visual tokens).
DEFAULT_KS: tuple[int, ...] = (32, 64, 128, 192)
