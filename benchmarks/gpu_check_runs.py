"""What a GPU check's results folder holds, read for its summary (``benchmarks/gpu_check.py summary OUT``):
the validate runs ``OUT/validate/<model>-<attn>-<prefill>[-<encoders>]/`` (``config.json``, ``stages.csv``,
``validate.csv``), the throughput table ``OUT/throughput/<model>/throughput.csv``, the gpu tests' log and
``steps.log``. An older or unfinished check lacks files and columns: each reader then gives None, NaN or an
empty table, and the targets say "NOT MEASURED" with the reason (``benchmarks/gpu_check_targets.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.common.measures.steadiness import unsteady_rounds

#: a validate run's folder name: the model, the attention kernel, the prefill path and, where not the default,
#: the image encoders
NAME = re.compile(r"^(?P<model>.+?)-(?P<attn>eager|sdpa|flash)-(?P<prefill>eager|captured|auto)"
                  r"(?:-(?P<encoders>[a-z-]+))?$")
#: the every-run table (runs.csv): per model, attention, prefill, encoders, method and budget
COLUMNS = ["model", "attn", "prefill", "encoders", "llm_attn", "method", "budget", "seq_len",
           "paper_prefill_ms", "roofline_ms", "over_roofline", "speedup_vs_none", "roofline_speedup",
           "of_roofline_speedup", "arithmetic_limit_ms", "over_limit", "e2e_total_ms", "e2e_roofline_ms",
           "e2e_speedup_vs_none"]
NAN = float("nan")


@dataclass(frozen=True)
class Run:
    """One validate run's folder, its labels (from the folder's name) and its tables (None when absent)."""

    folder: Path
    model: str
    attn: str
    prefill: str
    encoders: str
    config: dict
    stages: pd.DataFrame | None
    table: pd.DataFrame | None

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.folder.name

    def recorded(self) -> str:
        """How the stages were timed, as ``config.json``'s ``stage_timing`` records it ('' when absent)."""
        timing = self.config.get("stage_timing") or {}
        said = ", ".join(f"{k} {timing[k]}" for k in ("attn", "prefill", "dtype", "device") if timing.get(k))
        eager = "; ".join(f"{why} x{n}" for why, n in (timing.get("encoders_eager") or {}).items())
        return said + (f"; eager encoder calls: {eager}" if eager else "")


def _csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.is_file() else None


def read_runs(out: Path) -> list[Run]:
    """Every validate run of ``out`` whose folder is named ``<model>-<attn>-<prefill>[-<encoders>]``."""
    found = []
    for folder in sorted((out / "validate").glob("*")) if (out / "validate").is_dir() else []:
        m = NAME.match(folder.name)
        if not (m and folder.is_dir()):
            continue
        cfg = folder / "config.json"
        config = json.loads(cfg.read_text()) if cfg.is_file() else {}
        found.append(Run(folder, m["model"], m["attn"], m["prefill"], m["encoders"] or "auto", config,
                         _csv(folder / "stages.csv"), _csv(folder / "validate.csv")))
    return found


def _rows(df: pd.DataFrame, method: str, budget: int | None) -> pd.DataFrame:
    """``df``'s rows of ``method`` (at ``budget``; any budget when None: ``none`` has one)."""
    rows = df[df["method"] == method]
    return rows if budget is None else rows[rows["budget"].astype(str) == str(budget)]


def stage_ms(run: Run, method: str, budget: int | None, stage: str) -> tuple[float, float, str]:
    """(ms, roofline_ms, why): one stage of one (method, budget) of ``run``'s ``stages.csv``; NaN and the
    reason where the table, the row or the roofline is absent."""
    where = f"{run.name}/stages.csv"
    if run.stages is None:
        return NAN, NAN, f"no stages.csv in {run.name}"
    rows = _rows(run.stages, method, budget)
    rows = rows[rows["stage"] == stage]
    if rows.empty:
        at = "" if budget is None else f"@{budget}"
        return NAN, NAN, f"no {method}{at} row of stage {stage} in {where}"
    ms = float(rows["ms"].iloc[0])
    if "roofline_ms" not in rows:
        return ms, NAN, f"{where} has no roofline_ms column (an older run)"
    roof = float(rows["roofline_ms"].iloc[0])
    return ms, roof, "" if roof > 0 else f"no roofline for stage {stage} in {where}"


def prefill_value(run: Run, method: str, budget: int | None, column: str) -> tuple[float, str]:
    """(value, why): ``column`` of one (method, budget) row of ``run``'s ``validate.csv``."""
    if run.table is None:
        return NAN, f"no validate.csv in {run.name}"
    rows = _rows(run.table, method, budget)
    if rows.empty or column not in rows:
        return NAN, f"no {method}{'' if budget is None else f'@{budget}'} {column} in {run.name}/validate.csv"
    return float(rows[column].iloc[0]), ""


def unsteady_note(run: Run | None, pairs: list[tuple[str, int | None]]) -> str:
    """"; unsteady rounds: none 64.9-201 ms (3.1x), ..." for each (method, budget) of ``pairs`` whose whole
    call varied twofold or more across its rounds in ``run``
    (:func:`analysis.common.measures.steadiness.unsteady_rounds`); "" when every one was steady or has no
    rounds."""
    if run is None or run.table is None or "stage_total_ms_rounds" not in run.table:
        return ""
    said = []
    for method, budget in pairs:
        rows = _rows(run.table, method, budget)
        spread = unsteady_rounds(rows["stage_total_ms_rounds"].iloc[0]) if len(rows) else None
        if spread:
            lo, hi, _ = spread
            at = "" if budget is None else f"@{budget}"
            said.append(f"{method}{at} {lo:.3g}-{hi:.3g} ms ({hi / lo:.1f}x)")
    return f"; unsteady rounds: {', '.join(said)}" if said else ""


def throughput(out: Path, model: str) -> pd.DataFrame | None:
    """``OUT/throughput/<model>/throughput.csv`` (bench_throughput.py's table), None when absent."""
    return _csv(out / "throughput" / model / "throughput.csv")


def images_per_s(table: pd.DataFrame, method: str, budget: int | None, batch: int) -> float:
    """Images per second of one (method, budget, B) of a throughput table (``none``'s budget is ``all``)."""
    rows = table[(table["method"] == method) & (table["batch_size"] == batch)
                 & (table["budget"].astype(str) == ("all" if budget is None else str(budget)))]
    return float(rows["images_per_s"].iloc[0]) if len(rows) else NAN


def pytest_counts(log: str) -> dict[str, int]:
    """{passed, failed, errors, skipped, ...} of pytest's last summary line in ``log`` ({} when none ran)."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        found = re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", line)
        if found and re.search(r" in [\d.]+s", line):
            counts = {("errors" if w.startswith("error") else w): int(n) for n, w in found}
    return counts


def check_seconds(out: Path, now: float) -> tuple[float, str]:
    """(seconds, how): the whole check's time from ``steps.log``'s last start line to its end line after it
    (while the summary runs, to ``now``); NaN and the reason without a start line."""
    log = (out / "steps.log").read_text() if (out / "steps.log").is_file() else ""
    starts = [m.end() for m in re.finditer(r"^start \d+", log, re.M)]
    if not starts:
        return NAN, "no start line in steps.log"
    start = int(re.findall(r"^start (\d+)", log, re.M)[-1])
    end = re.findall(r"^end (\d+)", log[starts[-1]:], re.M)
    return (int(end[-1]) - start, "start to end (steps.log)") if end else (
        now - start, "start to the summary (steps.log)")


def _with_stages(df: pd.DataFrame, run: Run) -> pd.DataFrame:
    """``df`` with the whole call's ms, roofline and speed-up over none from ``run``'s stages.csv."""
    def total(m, b, col):
        v = stage_ms(run, m, None if m == "none" else b, "total")
        return v[0] if col == "ms" else v[1]
    df["e2e_total_ms"] = [total(m, b, "ms") for m, b in zip(df["method"], df["budget"])]
    df["e2e_roofline_ms"] = [total(m, b, "roof") for m, b in zip(df["method"], df["budget"])]
    none = df.loc[df["method"] == "none", "e2e_total_ms"]
    df["e2e_speedup_vs_none"] = (float(none.iloc[0]) if len(none) else NAN) / df["e2e_total_ms"]
    return df


def run_rows(out: Path) -> pd.DataFrame:
    """runs.csv: one row per (model, attention, prefill, encoders, method, budget) of every run's
    validate.csv, with the prefill's speed-ups over none and the whole call's (stages.csv's total) where
    present."""
    frames = []
    for run in read_runs(out):
        if run.table is None or run.table.empty:
            continue
        df = run.table.copy()
        base = df[df["method"] == "none"]
        none_ms = float(base["paper_prefill_ms"].iloc[0]) if len(base) and "paper_prefill_ms" in df else NAN
        df["speedup_vs_none"] = none_ms / df["paper_prefill_ms"] if "paper_prefill_ms" in df else NAN
        if "roofline_speedup" in df:
            df["of_roofline_speedup"] = df["speedup_vs_none"] / df["roofline_speedup"]
        df = _with_stages(df, run)
        llm = run.config.get("llm_attn_implementation", run.config.get("numerics", {}).get("attn", run.attn))
        for col, value in (("llm_attn", llm), ("encoders", run.encoders), ("prefill", run.prefill),
                           ("attn", run.attn), ("model", run.model)):
            df.insert(0, col, value)
        frames.append(df)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    for col in COLUMNS:
        if col not in rows:
            rows[col] = NAN
    return rows[COLUMNS]
