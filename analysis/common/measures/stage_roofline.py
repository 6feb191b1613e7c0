"""The roofline of each stage of a grounding call, as a run's row columns (this project's measurement).

One counted call (:mod:`litelvlm.cost.stage_count`: FLOPs and weight bytes by stage) and the device's rates
(the matrix-product rate, ``--matmul-tflops``; the copy bandwidth, :func:`litelvlm.cost.bound.device_gbps`)
give each stage's roofline, max(FLOPs / rate, weight bytes / bandwidth), and the whole call's, the sum of its
stages' (a host stage counts 0). A row gets ``stage_<stage>_flops``, ``stage_<stage>_weight_bytes`` and
``stage_<stage>_roofline_ms`` for every stage, ``other`` and ``total`` (the names
:mod:`analysis.common.presentation.stage_plots` declares), which ``stages.csv`` shows beside the measured ms
(:func:`~analysis.common.presentation.stage_plots.stages_frame`). Without rates no call is counted and no
column is added, so a run's tables stay as they were; but where counting is asked (``--stage-costs``), the
FLOPs and weight bytes, which need no rate, without the roofline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from analysis.common.measures.stage_costs import counted, less_tower_counts
from analysis.common.presentation.stage_plots import STAGE_FLOPS, STAGE_ROOFLINE, STAGE_WEIGHT_BYTES
from litelvlm.cost.bound import device_gbps
from litelvlm.cost.stage_count import StageCount, count_stages, known_rate, rooflines_ms
from litelvlm.cost.stages import COLUMNS


def roofline_columns(counts: dict[str, StageCount], tflops: float, gbps: float) -> dict[str, float]:
    """A row's columns of one counted call's ``counts`` (:func:`litelvlm.cost.stage_count.count_stages`) at
    ``tflops`` TFLOP/s and ``gbps`` GB/s: each stage's FLOPs, weight bytes and roofline ms."""
    roof = rooflines_ms(counts, tflops, gbps)
    out: dict[str, float] = {}
    for s in COLUMNS:
        out |= {STAGE_FLOPS[s]: float(counts[s].flops), STAGE_WEIGHT_BYTES[s]: float(counts[s].weight_bytes),
                STAGE_ROOFLINE[s]: float(roof[s])}
    return out


def counted_rooflines(pipe, call: Callable[[], Any], tflops: float | None, gbps: float | None = None,
                      count: bool = False, tower: Callable[[], Any] | None = None) -> dict[str, float]:
    """:func:`roofline_columns` of one counted ``call()`` of ``pipe`` (under ``torch.no_grad``); ``gbps``
    None: measured on the pipeline's device; without a known ``tflops``, each stage's FLOPs and weight bytes
    where ``count`` (:func:`analysis.common.measures.stage_costs.counted`), else {} (nothing run);
    ``tower``: a method's own tower run charged in place of the full one (``less_tower_counts``)."""
    if not known_rate(tflops):
        return counted(pipe, call, tower=tower) if count else {}
    gbps = device_gbps(str(pipe.device)) if gbps is None else gbps
    with torch.no_grad():
        counts = count_stages(pipe, call)[1]
    return roofline_columns(less_tower_counts(pipe, counts, tower), tflops, gbps)


__all__ = ["counted_rooflines", "roofline_columns"]
