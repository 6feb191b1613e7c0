"""The leaderboard columns of an accuracy table (``litelvlm tables``), where the run's ``summary.csv`` holds
them (:mod:`analysis.common.stats.leaderboard`; a run without them gives its table as before): loyalty
to the unpruned model with its interval, the layer-averaged visual tokens, the difference from ``random`` and
``downsample`` at the same budget in the table's lead metric with the paired test's Holm-adjusted p and its
family's size (the run's one criterion, :mod:`analysis.common.stats.significance`), whether the method
reads LLM attention weights, the pruning step's median time, and (``eval-grounding --stage-costs``, this
project's measurement) the GFLOPs of the vision, selection, LLM prefill and mask stages, the weights each
reads and the ms by stage. The share of the unpruned model's figure is the table's own "% of none" column.
Each shown column gets a short sentence in the caption.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis.common.presentation.stage_plots import STAGE_FLOPS, STAGE_MS, STAGE_WEIGHT_BYTES
from analysis.common.stats import leaderboard as lb
from analysis.common.stats import significance as sig
from analysis.common.stats.bootstrap import MIN_UNITS


def present(summary: pd.DataFrame) -> list[str]:
    """The leaderboard's columns ``summary`` holds, in its order."""
    return lb.board_columns(summary.columns)


#: the stages of the stage cells, in their order (v/s/p/m), and each FLOPs column's title
STAGES = lb.BOARD_STAGES[:-1]
GFLOPS_TITLES = {"vision": "Vision GFLOPs", "selection": "Selection GFLOPs", "prefill": "LLM GFLOPs",
                 "mask": "Mask GFLOPs"}


def _references(columns: list[str], lead: str) -> list[str]:
    """The references with a difference column in ``lead``."""
    return [ref for ref in lb.REFERENCES if f"diff_vs_{ref}_{lead}" in columns]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def numbers(row: pd.Series, columns: list[str]) -> dict:
    """The CSV's numbers of one row: every leaderboard column as summary.csv holds it."""
    return {c: row[c] if c == lb.READS_ATTENTION else _number(row[c]) for c in columns}


def _reads(value) -> str:
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower())
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return "yes" if bool(value) else "no"


def cells(row: pd.Series, columns: list[str], lead: str, lead_name: str, units: int,
          family_size: int | None = None) -> dict:
    """The shown cells of one row for the leaderboard's columns present (``—`` where a row has no value);
    ``family_size``: the family of the run's adjusted p-values (comparisons.csv)."""
    out = {}
    if lb.LOYALTY in columns:
        v, lo, hi = (_number(row.get(f"{lb.LOYALTY}{s}")) for s in ("", "_lo", "_hi"))
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if units >= MIN_UNITS and math.isfinite(lo + hi) else ""
        out["Loyalty"] = f"{100 * v:.1f}{ci}" if math.isfinite(v) else "—"
    if lb.LAYER_AVG in columns:
        v = _number(row[lb.LAYER_AVG])
        out["Layer-avg tokens"] = f"{v:.1f}" if math.isfinite(v) else "—"
    for ref in _references(columns, lead):
        d, p = _number(row[f"diff_vs_{ref}_{lead}"]), _number(row.get(f"p_adjusted_vs_{ref}_{lead}"))
        p_text = sig.p_text(p, family_size)
        out[f"{lead_name} vs {ref}"] = (f"{100 * d:+.1f} ({p_text})" if math.isfinite(d) and p_text
                                        else f"{100 * d:+.1f}" if math.isfinite(d) else "—")
    if lb.READS_ATTENTION in columns:
        out["Reads attention"] = _reads(row[lb.READS_ATTENTION])
    if lb.PRUNE_MS in columns:
        v = _number(row[lb.PRUNE_MS])
        out["Prune ms"] = f"{v:.2f}" if math.isfinite(v) else "—"
    return out | stage_cells(row, columns)


def _short(value: float) -> str:
    """Three significant digits, whole numbers from 1000 up; ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def stage_cells(row: pd.Series, columns: list[str]) -> dict:
    """The stage cells of one row where the summary holds the stage columns (``--stage-costs``): GFLOPs per
    stage, the weights each stage reads in MB (v/s/p/m) and the median ms per stage with the whole call's."""
    out = {}
    if STAGE_FLOPS["vision"] in columns:
        out |= {GFLOPS_TITLES[s]: _short(_number(row.get(STAGE_FLOPS[s])) / 1e9) for s in STAGES}
        out["Weights MB v/s/p/m"] = "/".join(_short(_number(row.get(STAGE_WEIGHT_BYTES[s])) / 2**20)
                                             for s in STAGES)
    if STAGE_MS["vision"] in columns:
        out["ms v/s/p/m (call)"] = ("/".join(_short(_number(row.get(STAGE_MS[s]))) for s in STAGES)
                                    + f" ({_short(_number(row.get(STAGE_MS['total'])))})")
    return out


def caption(columns: list[str], lead: str, lead_name: str, unit: str) -> str:
    """The caption's sentences on the leaderboard's columns present ("" with none)."""
    said = []
    if lb.LOYALTY in columns:
        said.append("Loyalty: mean mask IoU ×100 with the unpruned model's prediction for the same "
                    f"expression, 95% interval over {unit}s")
    if lb.LAYER_AVG in columns:
        said.append("Layer-avg tokens: the visual tokens each LLM decoder layer sees, averaged over the "
                    "layers (the method's token schedule; K for pruning before the LLM)")
    for ref in _references(columns, lead):
        said.append(f"{lead_name} vs {ref}: the method minus {ref} at the same budget ×100, with the paired "
                    "swap test's Holm-adjusted p and its family's size")
    if lb.READS_ATTENTION in columns:
        said.append("Reads attention: the method reads an LLM layer's attention weights")
    if lb.PRUNE_MS in columns:
        said.append("Prune ms: median time of the pruning step per call (— where it runs inside the LLM or "
                    "the vision tower)")
    if STAGE_FLOPS["vision"] in columns or STAGE_MS["vision"] in columns:
        said.append("stage costs (this project's measurement, eval-grounding --stage-costs), over the whole "
                    "call (the input's preparation, its prompt and the grounding) by stage: v the vision "
                    "towers with the paired CLIP, s the method's selection, p the LLM prefill (LLM GFLOPs), "
                    "m the mask decoder; GFLOPs and weights read (MB) of one counted call on the run's first "
                    "prompt, ms the median per call of each stage and, in brackets, of the whole call; a "
                    "method running the vision tower itself is charged its own run in place of the full "
                    "one. The paper's LLM-only figures (Layer-avg tokens, Prune ms, the FLOPs tables) stay "
                    "beside, as they are")
    return (f"Leaderboard columns (this project's): {'; '.join(said)}. ") if said else ""


__all__ = ["GFLOPS_TITLES", "STAGES", "caption", "cells", "numbers", "present", "stage_cells"]
