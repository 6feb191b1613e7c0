"""The time by stage of a timed run (:mod:`litelvlm.cost.stages`, this project's measurement): its table
(``stages.csv``), its line on screen and its figure (``stages.png``), for ``validate``, ``efficiency`` and
``benchmarks/bench_throughput.py``.

A run's rows carry one ``stage_<stage>_ms`` column per stage (:data:`STAGE_MS`; each the median over the
run's repeated calls, ``other`` and ``total`` included); :func:`stages_frame` turns them into ``stages.csv``,
one row per (method, budget, stage) with ``ms`` and ``share`` (``ms`` / the row's ``total``). With one call
per run the shares add up to 1 exactly; with repeats each stage is its own median, so they add up to about 1.
The figure is one stacked bar per run, ``none`` first, one segment per stage, titled with the attention
kernel, the prefill path, the dtype and the device of the run's ``config.json``, and labelled with the
weights' banner (random weights say so).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common.presentation.caveats import draw_notes
from analysis.common.presentation.device import device_name
from analysis.common.presentation.style import (
    baseline,
    figure,
    label_weights,
    model_name,
    palette,
    save_figure,
)
from litelvlm.cost.stages import COLUMNS, OTHER, STAGES, TOTAL
from litelvlm.llm.captured import runner_of
from litelvlm.runs.io import write_csv

#: the row column of each stage's median milliseconds
STAGE_MS = {s: f"stage_{s}_ms" for s in COLUMNS}
#: ``stages.csv``'s columns after the run's keys
TABLE_COLUMNS = ["stage", "ms", "share"]
#: the segments of a bar, bottom to top
SEGMENTS = (*STAGES, OTHER)
#: the files :func:`write_stages` writes (a run's optional outputs: an earlier run's are dropped when this one
#: writes none, ``RunFolder.drop_stale``)
STAGE_FILES = ("stages.csv", "stages.png")


def timing_record(pipe) -> dict[str, str]:
    """How ``pipe``'s stages are timed, for a run's ``config.json`` (``stage_timing``): the LLM's attention
    kernel (its config's ``_attn_implementation``), the prefill path (``captured`` where
    :mod:`litelvlm.llm.captured` runs it, else ``eager``), the dtype and the device."""
    lm = pipe.language_model
    return {"attn": str(getattr(lm.config, "_attn_implementation", None) or pipe.numerics.attn),
            "prefill": "eager" if runner_of(lm) is None else "captured", "dtype": str(pipe.dtype)[6:],
            "device": device_name(pipe.device)}


def stage_row(ms: dict[str, float] | None) -> dict[str, float]:
    """{``stage_<stage>_ms``: ms} of one timed call (the {stage: ms} of
    :class:`~litelvlm.cost.stages.StageTimer`); NaN for every stage when ``ms`` is None (not timed)."""
    return {col: float("nan") if ms is None else float(ms[s]) for s, col in STAGE_MS.items()}


def median_stages(calls: Sequence[dict]) -> dict[str, float]:
    """Each ``stage_<stage>_ms`` column's median over ``calls`` (rows of :func:`stage_row`)."""
    return {col: float(np.nanmedian([c.get(col, np.nan) for c in calls])) if any(
        pd.notna(c.get(col)) for c in calls) else float("nan") for col in STAGE_MS.values()}


def stages_frame(rows: pd.DataFrame, keys: Sequence[str] = ("method", "budget")) -> pd.DataFrame:
    """``stages.csv``: per row of ``rows`` with stage times (its ``keys`` kept, in the rows' order) one row
    per stage (:data:`~litelvlm.cost.stages.COLUMNS` order) with ``ms`` and ``share`` of ``total``."""
    keys = [k for k in keys if k in rows]
    if rows.empty or STAGE_MS[TOTAL] not in rows:
        return pd.DataFrame(columns=[*keys, *TABLE_COLUMNS])
    timed = rows[rows[STAGE_MS[TOTAL]].notna()]
    out = [{**{k: r[k] for k in keys}, "stage": s, "ms": float(r[col]),
            "share": float(r[col]) / float(r[STAGE_MS[TOTAL]]) if float(r[STAGE_MS[TOTAL]]) else float("nan")}
           for _, r in timed.iterrows() for s, col in STAGE_MS.items()]
    return pd.DataFrame(out, columns=[*keys, *TABLE_COLUMNS])


def _run_name(method: str, budget) -> str:
    return str(method) if baseline(str(method)) else f"{method}@{budget}"


def shares_text(frame: pd.DataFrame, method: str, budget=None) -> str | None:
    """``"prefill 61%, vision 20%, mask 15%, other 4%"``: the stages of one run of ``frame`` (``budget``
    None: the method's only or first run), largest share first, those under 0.5% left out."""
    mine = frame[frame["method"] == method]
    if budget is not None:
        mine = mine[mine["budget"].astype(str) == str(budget)]
    if mine.empty:
        return None
    first = mine.iloc[0]
    mine = mine[(mine["budget"] == first["budget"]) & (mine["stage"] != TOTAL)]
    parts = sorted(((float(s), st) for s, st in zip(mine["share"], mine["stage"]) if s >= 0.005),
                   reverse=True)
    return ", ".join(f"{st} {s:.0%}" for s, st in parts)


def screen_line(frame: pd.DataFrame, method: str = "litelvlm") -> str | None:
    """The terminal's line: where the time goes for ``none`` and for ``method`` at its smallest budget (None:
    nothing timed)."""
    if frame.empty:
        return None
    said = []
    base = next((m for m in frame["method"].unique() if baseline(str(m))), None)
    if base is not None and (text := shares_text(frame, base)):
        said.append(f"stages ({base}): {text}")
    ours = frame[frame["method"] == method]
    if not ours.empty:
        small = min(ours["budget"], key=lambda b: float(b) if str(b).replace(".", "").isdigit() else np.inf)
        if text := shares_text(frame, method, small):
            said.append(f"({method}@{small}): {text}")
    return "; ".join(said) or None


def run_label(config: dict, attn: str | None = None) -> tuple[str, str]:
    """(``attention eager``, ``prefill eager, float32, cpu``): how the run timed, read from its
    ``config.json`` (its ``stage_timing`` record, else the study's own keys); ``attn``: a panel's kernel
    (efficiency's ``attn`` column)."""
    rec = config.get("stage_timing") or {}
    kernels = config.get("attn_implementations") or [config.get("attn")]
    attn = attn or rec.get("attn") or kernels[0] or "the model's default"
    prefill = rec.get("prefill") or config.get("prefill") or "eager"
    dtype = rec.get("dtype") or config.get("model_dtype") or config.get("dtype") or "?"
    device = rec.get("device") or config.get("device") or "?"
    return f"attention {attn}", f"prefill {prefill}, {dtype}, {device}"


def plot_stages(frame: pd.DataFrame, config: dict, model: str, notes: Iterable[str] = ()):
    """The stacked-bar figure of ``frame`` (:func:`stages_frame`): one panel per attention kernel (an
    ``attn`` column), one bar per run, ``none`` first, one segment per stage; returns the figure."""
    panels = list(frame["attn"].unique()) if "attn" in frame else [None]
    runs = _runs(frame)
    fig, axes = figure(columns=2, aspect=0.42, ncols=len(panels), squeeze=False, sharey=True)
    colors = dict(zip(SEGMENTS, palette(len(SEGMENTS))))
    for ax, attn in zip(axes[0], panels):
        mine = frame if attn is None else frame[frame["attn"] == attn]
        bottom = np.zeros(len(runs))
        for stage in SEGMENTS:
            ms = np.array([_ms(mine, m, b, stage) for m, b in runs])
            if np.nansum(ms) > 0:
                ax.bar(range(len(runs)), np.nan_to_num(ms), bottom=bottom, color=colors[stage], label=stage,
                       width=0.7)
            bottom += np.nan_to_num(ms)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels([_run_name(m, b) for m, b in runs], rotation=35, ha="right")
        ax.set_title(run_label(config, attn)[0], fontsize=7)
    axes[0][0].set_ylabel("time per call (ms)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", title="stage")
    fig.suptitle(f"{model_name(model)}: where the time of a grounding call goes\n{run_label(config)[1]}",
                 fontsize=8)
    label_weights(fig, model)
    draw_notes(fig, notes)
    return fig


def _runs(frame: pd.DataFrame) -> list[tuple[str, object]]:
    """(method, budget) of every run, in the table's order with the baseline first."""
    pairs = list(dict.fromkeys(zip(frame["method"], frame["budget"])))
    return sorted(pairs, key=lambda p: not baseline(str(p[0])))


def _ms(frame: pd.DataFrame, method: str, budget, stage: str) -> float:
    hit = frame[(frame["method"] == method) & (frame["budget"] == budget) & (frame["stage"] == stage)]
    return float(hit["ms"].iloc[0]) if len(hit) else float("nan")


def write_stages(out: str | Path, frame: pd.DataFrame, config: dict, model: str, figures: bool = True,
                 notes: Iterable[str] = ()) -> list[str]:
    """Write ``stages.csv`` (and, with ``figures``, ``stages.png``) of ``frame`` into ``out`` through the
    run's transaction (:mod:`litelvlm.runs.io`: they appear when the run commits); returns the names written
    (nothing when no stage was timed)."""
    if frame.empty:
        return []
    write_csv(Path(out) / "stages.csv", frame)
    if not figures:
        return ["stages.csv"]
    save_figure(plot_stages(frame, config, model, notes), out, "stages", formats=("png",))
    return ["stages.csv", "stages.png"]


__all__ = ["SEGMENTS", "STAGE_FILES", "STAGE_MS", "median_stages", "plot_stages", "run_label", "screen_line",
           "shares_text", "stage_row", "stages_frame", "timing_record", "write_stages"]
