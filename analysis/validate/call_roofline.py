"""``validate``'s roofline of every stage of a grounding call (this project's measurement; with
``--matmul-tflops``: measured on CUDA by default, none on a CPU unless given).

Beside the call it times by stage, each (method, budget) run gets one more whole call (the input made again,
its prompt, ``ground``) counted by stage (:mod:`litelvlm.cost.stage_count`: FLOPs and weight bytes), whose
rooflines at the run's matrix-product rate and the device's copy bandwidth
(:func:`litelvlm.cost.bound.device_gbps`) become the row's ``stage_<stage>_flops``, ``_weight_bytes`` and
``_roofline_ms`` columns (:mod:`analysis.common.measures.stage_roofline`), and ``stages.csv``'s
``roofline_ms`` / ``over_roofline``. Counting is deterministic, so a resumed run counts its runs again;
without a rate nothing is counted and the tables are as before, unless ``--stage-costs`` asks for the FLOPs
and weight bytes (no roofline). report.md and the terminal headline each run's
whole call beside its prefill (:func:`report_lines`; the terminal LiteLVLM's runs), and the runs whose whole
call varied twofold or more across their rounds after them.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from analysis.common.measures.stage_roofline import counted_rooflines
from analysis.common.presentation.stage_plots import speedup_lines
from litelvlm.cost.bound import device_gbps
from litelvlm.cost.stage_count import known_rate


def add_stage_rooflines(rows: pd.DataFrame, pipe, tflops: float | None,
                        call: Callable[[str, int], object], count: bool = False,
                        tower: Callable[[str], Callable | None] | None = None) -> pd.DataFrame:
    """``rows`` with each stage's FLOPs, weight bytes and roofline of one counted ``call(method, K)`` per row
    (without a rate ``tflops``: the FLOPs and weight bytes where ``count``, else ``rows`` unchanged);
    ``tower(method)``: the full tower run a method running the tower itself is charged in place of
    (:func:`analysis.common.measures.stage_costs.tower_rerun`)."""
    if not (known_rate(tflops) or count) or rows.empty:
        return rows
    gbps = device_gbps(str(pipe.device)) if known_rate(tflops) else None
    counted = [counted_rooflines(pipe, lambda m=m, k=k: call(m, int(k)), tflops, gbps, count,
                                 None if tower is None else tower(m))
               for m, k in zip(rows["method"], rows["budget"])]
    return pd.concat([rows.reset_index(drop=True), pd.DataFrame(counted)], axis=1)


def report_lines(stages: pd.DataFrame, lengths: dict | None = None,
                 unsteady: list[str] | None = None) -> list[str]:
    """report.md's section on the whole call's speed-up over ``none`` beside the prefill's (``stages``:
    ``stages.csv``'s frame; empty when no stage was timed; ``lengths``: each run's LLM sequence length;
    ``unsteady``: :func:`~analysis.common.measures.steadiness.unsteady_lines`, said after them)."""
    lines = speedup_lines(stages, lengths=lengths) + list(unsteady or [])
    if not lines:
        return []
    roof = "roofline_ms" in stages
    how = ("; in brackets the same ratio of their rooflines (each stage's max(FLOPs / the matrix-product "
           "rate, weight bytes / the copy bandwidth), the call's the sum of its stages': the speed-up the "
           "arithmetic and weight reads allow), and the call's time over its own roofline." if roof
           else " (``--matmul-tflops`` adds their rooflines).")
    return ["", "## The whole call and its prefill against none", "",
            "From the time by stage (``stages.csv``): ``none``'s median ms over the run's, of the prefill "
            "stage (the decoder-layer loop) and of the whole call (image, prompt, ``ground``)" + how, "",
            *[f"- {line}" for line in lines]]


__all__ = ["add_stage_rooflines", "report_lines"]
