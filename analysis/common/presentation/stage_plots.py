"""The time by stage of a timed run (:mod:`litelvlm.cost.stages`, this project's measurement): its table
(``stages.csv``), its lines on screen and its figure (``stages.png``), for ``validate``, ``efficiency`` and
``benchmarks/bench_throughput.py``.

A run's rows carry one ``stage_<stage>_ms`` column per stage (:data:`STAGE_MS`; each the median over the
run's repeated calls, ``other`` and ``total`` included); :func:`stages_frame` turns them into ``stages.csv``,
one row per (method, budget, stage) with ``ms`` and ``share`` (``ms`` / the row's ``total``). With one call
per run the shares add up to 1 exactly; with repeats each stage is its own median, so they add up to about 1.
Where the run has rates (its rows carry :data:`STAGE_ROOFLINE` and the counts,
:mod:`analysis.common.measures.stage_roofline`), each row
also has the stage's ``flops``, ``weight_bytes``, ``roofline_ms`` and ``over_roofline`` (``ms`` / the
roofline; NaN where the roofline is 0 or unknown), ``total``'s being the whole call's (the sum of its
stages'); without rates those columns are absent, but for ``flops`` and ``weight_bytes`` where the rows
carry the counts alone (``--stage-costs``: :data:`COUNT_COLUMNS`). :func:`speedup_lines` puts each run's
whole-call speed-up over ``none`` beside its prefill's, each with its roofline ratio. The figure is
:func:`analysis.common.presentation.stage_figure.plot_stages`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common.presentation.device import device_name
from analysis.common.presentation.stage_figure import SEGMENTS, plot_stages, run_label, run_name
from analysis.common.presentation.style import save_figure
from litelvlm.cost.stages import COLUMNS, TOTAL
from litelvlm.llm.captured import runner_of
from litelvlm.lvlm.encoders import runner_of as encoders_runner
from litelvlm.methods import is_baseline
from litelvlm.runs.io import write_csv

#: the row column of each stage's median milliseconds
STAGE_MS = {s: f"stage_{s}_ms" for s in COLUMNS}
#: the row column of each stage's FLOPs, weight bytes and roofline (ms), where the run has rates
#: (:mod:`analysis.common.measures.stage_roofline`)
STAGE_FLOPS = {s: f"stage_{s}_flops" for s in COLUMNS}
STAGE_WEIGHT_BYTES = {s: f"stage_{s}_weight_bytes" for s in COLUMNS}
STAGE_ROOFLINE = {s: f"stage_{s}_roofline_ms" for s in COLUMNS}
#: ``stages.csv``'s columns after the run's keys
TABLE_COLUMNS = ["stage", "ms", "share"]
#: the columns ``stages.csv`` adds where the run has rates (its rows' roofline columns)
ROOFLINE_COLUMNS = ["flops", "weight_bytes", "roofline_ms", "over_roofline"]
#: the columns ``stages.csv`` adds where the run counted its stages without a rate (``--stage-costs``)
COUNT_COLUMNS = ROOFLINE_COLUMNS[:2]
#: the files :func:`write_stages` and :func:`analysis.common.measures.amdahl.write_amdahl` write (a run's
#: optional outputs: an earlier run's are dropped when this one writes none, ``RunFolder.drop_stale``)
STAGE_FILES = ("stages.csv", "stages.png", "amdahl.csv", "amdahl.png")


def timing_record(pipe) -> dict[str, str]:
    """How ``pipe``'s stages are timed, for a run's ``config.json`` (``stage_timing``): the LLM's attention
    kernel (its config's ``_attn_implementation``), the prefill path (``captured`` where
    :mod:`litelvlm.llm.captured` runs it, with its ``capture``; ``compiled`` where ``validate --compile``
    compiled each decoder layer; else ``eager``), the image encoders' mode (``--encoders``: ``eager`` or the
    :mod:`litelvlm.lvlm.encoders` mode they run in; captured, which encoders and, per reason, the calls that
    ran eagerly so far, a FLOP count's left out), the dtype and the device."""
    lm = pipe.language_model
    runner = runner_of(lm)
    if runner is not None:
        capture = runner.capture + ("-eager" if runner.backend == "eager" else "")
        path = {"prefill": "captured", "capture": capture}
    else:  # --compile: each layer's forward compiled in place (litelvlm.llm.compiled)
        compiled = any("forward" in vars(layer) for layer in getattr(lm, "layers", ()))
        path = {"prefill": "compiled" if compiled else "eager"}
    encoders = encoders_runner(pipe)
    captured = {} if encoders is None else {
        "encoders_captured": encoders.record()["captured_encoders"],
        "encoders_eager": dict(sorted(encoders.eager_reasons().items()))}
    return {"attn": str(getattr(lm.config, "_attn_implementation", None) or pipe.numerics.attn), **path,
            "encoders": "eager" if encoders is None else encoders.mode, **captured,
            "dtype": str(pipe.dtype)[6:], "device": device_name(pipe.device)}


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
    per stage (:data:`~litelvlm.cost.stages.COLUMNS` order) with ``ms`` and ``share`` of ``total``, and
    :data:`ROOFLINE_COLUMNS` where the rows carry each stage's roofline (:data:`COUNT_COLUMNS` where they
    carry its counts alone)."""
    keys = [k for k in keys if k in rows]
    if rows.empty or STAGE_MS[TOTAL] not in rows:
        return pd.DataFrame(columns=[*keys, *TABLE_COLUMNS])
    extra = (ROOFLINE_COLUMNS if STAGE_ROOFLINE[TOTAL] in rows
             else COUNT_COLUMNS if STAGE_FLOPS[TOTAL] in rows else [])
    timed = rows[rows[STAGE_MS[TOTAL]].notna()]
    out = [{**{k: r[k] for k in keys}, "stage": s, "ms": float(r[col]),
            "share": float(r[col]) / float(r[STAGE_MS[TOTAL]]) if float(r[STAGE_MS[TOTAL]]) else float("nan"),
            **{c: v for c, v in _roofline(r, s).items() if c in extra}}
           for _, r in timed.iterrows() for s, col in STAGE_MS.items()]
    frame = pd.DataFrame(out, columns=[*keys, *TABLE_COLUMNS, *extra])
    if extra:  # whole counts, blank where a run was not counted
        frame[["flops", "weight_bytes"]] = frame[["flops", "weight_bytes"]].round().astype("Int64")
    return frame


def _roofline(row: pd.Series, stage: str) -> dict[str, float]:
    """One stage's :data:`ROOFLINE_COLUMNS` of a run's ``row`` (NaN where the run was not counted)."""
    ms, roof = float(row[STAGE_MS[stage]]), float(row.get(STAGE_ROOFLINE[stage], np.nan))
    return {"flops": float(row.get(STAGE_FLOPS[stage], np.nan)),
            "weight_bytes": float(row.get(STAGE_WEIGHT_BYTES[stage], np.nan)), "roofline_ms": roof,
            "over_roofline": ms / roof if roof > 0 else float("nan")}


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
    base = next((m for m in frame["method"].unique() if is_baseline(str(m))), None)
    if base is not None and (text := shares_text(frame, base)):
        said.append(f"stages ({base}): {text}")
    ours = frame[frame["method"] == method]
    if not ours.empty:
        small = min(ours["budget"], key=lambda b: float(b) if str(b).replace(".", "").isdigit() else np.inf)
        if text := shares_text(frame, method, small):
            said.append(f"({method}@{small}): {text}")
    return "; ".join(said) or None


def _value(frame: pd.DataFrame, method: str, budget, stage: str, column: str = "ms") -> float:
    """``column`` of one (method, budget, stage) row of ``frame`` (NaN where absent)."""
    if column not in frame:
        return float("nan")
    hit = frame[(frame["method"] == method) & (frame["budget"].astype(str) == str(budget))
                & (frame["stage"] == stage)]
    return float(hit[column].iloc[0]) if len(hit) else float("nan")


def speedup_line(frame: pd.DataFrame, method: str, budget, base: tuple[str, object],
                 lengths: dict | None = None) -> str | None:
    """``"litelvlm@192: prefill 1.88x (roofline 2.18x), whole call 1.20x (roofline 1.48x; call at 7.6x its
    roofline) (sequence 867 -> 483 tokens)"``: the run's speed-ups over the ``base`` run (method, budget) of
    ``frame`` (:func:`stages_frame`), each with the ratio of the rooflines where known, and the two runs' LLM
    sequence lengths where ``lengths`` ({(method, budget): tokens}) has them; None where a time is missing."""
    ratio = {}
    for stage, column in (("prefill", "ms"), ("prefill", "roofline_ms"), (TOTAL, "ms"),
                          (TOTAL, "roofline_ms")):
        b, r = _value(frame, *base, stage, column), _value(frame, method, budget, stage, column)
        ratio[stage, column] = b / r if b > 0 and r > 0 else float("nan")
    if not (ratio["prefill", "ms"] > 0 and ratio[TOTAL, "ms"] > 0):
        return None
    pre = f" (roofline {ratio['prefill', 'roofline_ms']:.2f}x)" if ratio["prefill", "roofline_ms"] > 0 else ""
    over = _value(frame, method, budget, TOTAL) / _value(frame, method, budget, TOTAL, "roofline_ms")
    call = (f" (roofline {ratio[TOTAL, 'roofline_ms']:.2f}x; call at {over:.1f}x its roofline)"
            if ratio[TOTAL, "roofline_ms"] > 0 else "")
    seq = [(lengths or {}).get(k) for k in (base, (method, budget))]
    said = f" (sequence {int(seq[0])} -> {int(seq[1])} tokens)" if None not in seq else ""
    return (f"{run_name(method, budget)}: prefill {ratio['prefill', 'ms']:.2f}x{pre}, whole call "
            f"{ratio[TOTAL, 'ms']:.2f}x{call}{said}")


def speedup_lines(frame: pd.DataFrame, method: str | None = None, lengths: dict | None = None) -> list[str]:
    """:func:`speedup_line` of every pruned run of ``frame`` over its baseline run (``method``: that method's
    runs only; ``lengths``: each run's LLM sequence length), in the table's order; [] without a baseline
    run."""
    if frame.empty:
        return []
    runs = list(dict.fromkeys(zip(frame["method"], frame["budget"])))
    base = next(((m, b) for m, b in runs if is_baseline(str(m))), None)
    if base is None:
        return []
    return [line for m, b in runs if not is_baseline(str(m)) and method in (None, m)
            for line in [speedup_line(frame, m, b, base, lengths)] if line]


def headline_lines(frame: pd.DataFrame, method: str = "litelvlm", most: int = 6,
                   lengths: dict | None = None) -> list[str]:
    """The terminal's speed-ups (:func:`speedup_lines`, naming each run's sequence length where ``lengths``
    gives it): ``method``'s runs, or, where it did not run, the first ``most`` runs'."""
    return speedup_lines(frame, method, lengths) or speedup_lines(frame, lengths=lengths)[:most]


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


__all__ = ["COUNT_COLUMNS", "ROOFLINE_COLUMNS", "SEGMENTS", "STAGE_FILES", "STAGE_FLOPS", "STAGE_MS",
           "STAGE_ROOFLINE", "STAGE_WEIGHT_BYTES", "headline_lines", "median_stages",
           "plot_stages", "run_label", "screen_line", "shares_text", "speedup_line", "speedup_lines",
           "stage_row", "stages_frame", "timing_record", "write_stages"]
