"""The time-by-stage table, one per ``validate`` or ``efficiency`` run timed by stage (its ``stages.csv``;
this project's measurement, :mod:`litelvlm.cost.stages`): per method and budget (a block per attention kernel
where the run timed several), each stage's milliseconds and the whole call's, the whole call's speed-up over
``none`` beside the LLM's, the speed-up the call would have if only its LLM had changed (Amdahl's law at the
unpruned call's LLM share) and the milliseconds it saved outside the LLM
(:mod:`analysis.common.measures.amdahl`). The caption gives the unpruned call's LLM share and the bound on a
method that only shortens the LLM.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.common.measures.amdahl import amdahl_frame, llm_lengths
from analysis.common.runs.run_tree import Run
from analysis.tables import caption as cap
from analysis.tables.accuracy import budget_text, ordered
from analysis.tables.efficiency import number
from analysis.tables.render import Table
from litelvlm.cost.stages import OTHER, STAGES, TOTAL

#: the columns of the Amdahl table a row shows, with their titles
AMDAHL_SHOWN = {"speedup": "Speed-up", "llm_speedup": "LLM speed-up", "bound_at_llm_speedup": "Only the LLM"}


def _times(value: float) -> str:
    return f"{value:.2f}×" if isinstance(value, float) and math.isfinite(value) else "—"


def _rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """One row per run (its stages' ms as columns, the Amdahl columns joined), in the tables' order per
    kernel, and the rows where a block starts."""
    keys = [k for k in ("attn", "method", "budget") if k in frame]
    ms = frame.pivot_table(index=keys, columns="stage", values="ms", aggfunc="first", sort=False)
    ms = ms.reset_index().reindex(columns=[*keys, *STAGES, OTHER, TOTAL])
    runs = ms.merge(amdahl_frame(frame), on=keys, how="left", suffixes=("", "_amdahl"))
    parts, blocks, offset = [], [], 0
    for _, group in (runs.groupby("attn", sort=False) if "attn" in keys else [(None, runs)]):
        order, starts = ordered(group.reset_index(drop=True))
        blocks += [offset + i for i in starts]
        parts.append(order)
        offset += len(order)
    return pd.concat(parts, ignore_index=True), blocks


def run_lengths(run: Run) -> dict:
    """{(method, budget): the LLM's sequence length} of a run: ``validate.csv``'s ``seq_len`` or
    ``efficiency.csv``'s ``n_tokens`` (empty where neither holds it)."""
    for name, column in (("validate.csv", "seq_len"), ("efficiency.csv", "n_tokens")):
        if (run.folder / name).is_file():
            return llm_lengths(pd.read_csv(run.folder / name), column)
    return {}


def stages_table(run: Run, root: Path, name: str) -> Table:
    """The time-by-stage table of one run timed by stage (see the module)."""
    frame = pd.read_csv(run.folder / "stages.csv")
    rows, blocks = _rows(frame)
    lengths = run_lengths(run)
    rows["llm_tokens"] = [lengths.get((m, b), math.nan) for m, b in zip(rows["method"], rows["budget"])]
    shown_stages = [s for s in (*STAGES, OTHER) if (rows[s].fillna(0) > 0).any()]
    shown = pd.DataFrame({"Method": rows["method"],
                          "K": [budget_text(m, b) for m, b in zip(rows["method"], rows["budget"])]})
    if "attn" in rows:
        shown.insert(1, "Attention", rows["attn"])
    shown["LLM tokens"] = ["—" if not math.isfinite(v) else f"{int(v)}"
                           for v in rows["llm_tokens"].astype(float)]
    for stage in shown_stages:
        shown[f"{stage} ms"] = [number(v) for v in rows[stage]]
    shown["Call ms"] = [number(v) for v in rows[TOTAL]]
    for col, title in AMDAHL_SHOWN.items():
        shown[title] = [_times(v) for v in rows[col]]
    shown["Saved outside the LLM ms"] = ["—" if not math.isfinite(v) else number(v) if v else "0"
                                         for v in rows["saved_outside_llm_ms"].astype(float)]
    data = rows[[*(k for k in ("attn", "method", "budget") if k in rows), "llm_tokens", *STAGES, OTHER, TOTAL,
                 "llm_share_of_base", "speedup", "llm_speedup", "bound_llm_only", "bound_at_llm_speedup",
                 "saved_outside_llm_ms"]].assign(weights=str(run.identity.get("weights")))
    return Table(name, stages_caption(run, root, rows), shown, data, blocks, run.folder, cap.is_random(run))


def stages_caption(run: Run, root: Path, rows: pd.DataFrame) -> str:
    """The table's caption from the run's record and the unpruned call's LLM share."""
    c, timing = run.config, run.config.get("stage_timing") or {}
    p = rows["llm_share_of_base"].dropna()
    bound = (f"The LLM is {p.iloc[0]:.0%} of none's whole call (prefill and decode): a method that only "
             f"shortens the LLM makes the call at most {1 / (1 - p.iloc[0]):.2f}× faster (Amdahl's law). "
             if len(p) else "No unpruned run: no speed-ups. ")
    device = c.get("gpu") or timing.get("device") or c.get("device") or "device unrecorded"
    return (f"{cap.opening(run)}. Time by stage per method and budget (this project's measurement: "
            f"`{run.identity['study']}`, {device}, prefill {timing.get('prefill', 'unrecorded')}), in ms per "
            f"call, each run at the LLM sequence length its LLM tokens column gives. {bound}Speed-up: none's "
            "whole call over the row's; LLM speed-up: none's prefill and decode over the row's; Only the "
            "LLM: the whole call's speed-up had only the LLM changed by the row's LLM speed-up (Amdahl's "
            "law, this project's reading: a row above it saved outside the LLM, one below paid there); "
            f"Saved outside the LLM: none's ms outside the LLM less the row's. Run: {cap.where(run, root)}.")


__all__ = ["stages_caption", "stages_table"]
