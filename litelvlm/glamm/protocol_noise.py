"""The official RefCOCO protocol's own sampling noise: how many sentences it scores, and how much
gIoU moves between two runs of the official code on the same weights.

GLaMM's evaluation draws ``OFFICIAL_MAX_SENTENCES`` (3) sentences per image without replacement
(all of them when the image has fewer), from unseeded generators, so each official run scores a
different sample. For per-image sentence counts ``n_i``, the sum of the sampled IoUs has variance
``sum_i 3 (n_i - 3) / (n_i - 1) * sigma^2`` when one sentence's IoU spreads with standard deviation
``sigma`` around its image's mean (simple random sampling without replacement within each image).
``sigma`` needs real weights; 0.3 is an assumption, stated wherever the figure is used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .protocol import OFFICIAL_MAX_SENTENCES


def sampled_sentences(counts: Iterable[int], per_image: int = OFFICIAL_MAX_SENTENCES) -> int:
    """Sentences one official run scores, for images with ``counts`` sentences each."""
    return sum(min(per_image, int(n)) for n in counts)


def giou_run_sd(counts: Iterable[int], sigma: float = 0.3, per_image: int = OFFICIAL_MAX_SENTENCES) -> float:
    """Run-to-run standard deviation of gIoU (as a fraction) under the official per-image sampling."""
    counts = [int(n) for n in counts]
    k = per_image
    var = sum(k * (n - k) / (n - 1) for n in counts if n > k) * sigma ** 2
    total = sampled_sentences(counts, k)
    return math.sqrt(var) / total if total else math.nan
