"""``efficiency --prefill`` and the arithmetic limit of its timed prefills (this project's additions).

Each timed row gets ``arithmetic_limit_ms`` (2 x the decoder layers' parameters x tokens per layer of its
token plan / the device's matrix-product rate, :mod:`litelvlm.cost.bound`) and ``over_limit``
(``paper_prefill_ms``, the decoder-layer loop, over it) where the rate is known (``--matmul-tflops``: measured
on cuda by default); a run above 3x is called overhead-bound on screen and on the prefill figure, with the
ratio.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis.efficiency.options import EfficiencyArgs
from litelvlm.cost.bound import (
    OVERHEAD_BOUND,
    decoder_params,
    device_gbps,
    limit_ms,
    lm_roofline_ms,
    matmul_tflops,
    screen_note,
)
from litelvlm.llm.captured import eager_lines, merge_eager_runs
from litelvlm.lvlm.captured_paths import install_paths


def install_prefill(pipe, args: EfficiencyArgs) -> None:
    """``--prefill captured``: a fresh captured prefill on ``pipe``'s LLM (one per attention implementation: a
    capture is specialised to the attention it recorded), and ``--encoders`` (the image encoders captured on
    cuda by default); nothing for the eager paths."""
    install_paths(pipe, args.prefill, args.capture, args.encoders)


def say_eager(accounts: list[dict[str, list[str]]]) -> None:
    """Name on screen, once per reason, the runs whose decoder-layer calls ran eagerly under ``--prefill
    captured`` (``accounts``: one per captured prefill of the run,
    :attr:`litelvlm.llm.captured.CapturedPrefill.eager_runs`)."""
    for line in eager_lines(merge_eager_runs(*accounts)):
        print(f"efficiency: {line}", file=sys.stderr)


def resolve_tflops(args: EfficiencyArgs, device, dtype) -> float | None:
    """The rate of ``--matmul-tflops`` (TFLOP/s), None: no limit (``off``, or ``auto`` on a CPU)."""
    value = str(args.matmul_tflops)
    if value == "off" or (value == "auto" and str(device) == "cpu"):
        return None
    return matmul_tflops(device, dtype) if value in ("auto", "measure") else float(value)


def limit_columns(pipe, plan, paper_prefill_ms: float, tflops: float | None) -> dict:
    """``arithmetic_limit_ms``, ``over_limit``, ``roofline_ms`` and ``over_roofline`` of one row of token plan
    ``plan`` ({} without a rate; the roofline's bandwidth measured once on the LLM's device)."""
    if tflops is None:
        return {}
    lm = pipe.language_model
    layers = len(lm.layers)
    tokens = sum(count * n for count, n in plan.layers(layers))
    limit = limit_ms(decoder_params(lm), layers, tokens, tflops)
    gbps = device_gbps(str(next(lm.layers.parameters()).device))
    roof = lm_roofline_ms(lm, tokens // layers, tflops, gbps, tokens)
    return {"arithmetic_limit_ms": limit, "over_limit": paper_prefill_ms / limit, "roofline_ms": roof,
            "over_roofline": paper_prefill_ms / roof}


def screen_warning(df: pd.DataFrame, captured: bool) -> str | None:
    """The terminal's overhead-bound line, against the roofline where known (None: no row is, or no rate)."""
    if "over_roofline" in df:
        return screen_note(list(df["over_roofline"]), captured, "roofline")
    return screen_note(list(df["over_limit"]), captured) if "over_limit" in df else None


def annotate_figure(fig, df: pd.DataFrame) -> None:
    """Write the overhead-bound note, with the ratios, on the prefill figure (nothing when no row is)."""
    col = "over_roofline" if "over_roofline" in df else "over_limit"
    if col not in df:
        return
    ratios = df[col].dropna()
    what = "roofline" if col == "over_roofline" else "arithmetic limit"
    bad = ratios[ratios > OVERHEAD_BOUND]
    if bad.empty:
        return
    fig.text(0.01, -0.01, f"overhead-bound: {len(bad)} of {len(ratios)} prefills at {bad.min():.1f}-"
             f"{bad.max():.1f}x their {what} (> {OVERHEAD_BOUND:g}x): launch/overhead-bound times, "
             # below the axis label
             "not what pruning saves", fontsize=7, color="firebrick", ha="left", va="top")


__all__ = ["annotate_figure", "install_prefill", "limit_columns", "resolve_tflops", "say_eager",
           "screen_warning"]
