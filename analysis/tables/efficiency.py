"""The efficiency table, one per ``efficiency`` or ``validate`` run: per method and budget, the paper's four
quantities, TFLOPs and storing activation (GiB) on the paper's definitions (analytic), prefill on the paper's
definition (the decoder-layer loop) and CUDA time on this project's reading (the whole pipeline), each with
``(n×)``, the unpruned model's value over the row's. Times per attention kernel where the run timed several.
The CUDA time is shown on a CUDA device only (as ``efficiency`` prints it); a ``--flops-only`` run shows no
times.

``efficiency``: its ``efficiency.csv`` (``paper_tflops``, ``paper_prefill_ms``, ``cuda_time_reading_ms``,
``paper_activation_gib``). ``validate``: its ``validate.csv`` (times), ``memory.csv`` (storing activation) and
``ratios.csv`` (TFLOPs; ``none``'s from any row's ``paper_def_tflops`` x ``paper_def_flops_speedup``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.common.runs.run_tree import Run
from analysis.tables import caption as cap
from analysis.tables.accuracy import budget_text, ordered
from analysis.tables.render import Table
from litelvlm.methods import is_baseline

#: the normalized columns (efficiency.csv's names -> the table's)
EFFICIENCY_COLUMNS = {"paper_tflops": "tflops", "paper_prefill_ms": "prefill_ms",
                      "cuda_time_reading_ms": "cuda_ms", "paper_activation_gib": "activation_gib"}
#: the columns every efficiency.csv holds (the times only where the run measured them)
COUNTED = ("paper_tflops", "paper_activation_gib")
#: the quantities: (column, shown title, timed per attention kernel)
QUANTITIES = (("tflops", "TFLOPs", False), ("prefill_ms", "Prefill ms", True),
              ("cuda_ms", "CUDA time ms", True), ("activation_gib", "Activation GiB", False))
#: the single kernel of a run that records none
DEFAULT_ATTN = "the model's default"


def on_cuda(device: object) -> bool:
    """Whether the run's device is a CUDA one (not a CPU, nor the meta device of a ``--flops-only`` run)."""
    return bool(device) and not str(device).lower().startswith(("cpu", "meta"))


def efficiency_rows(run: Run) -> pd.DataFrame:
    """An ``efficiency`` run's rows: method, budget, attn and the four quantities (an ``arrangement`` said
    beside the method)."""
    df = pd.read_csv(run.folder / "efficiency.csv")
    missing = [c for c in ("method", "budget", *COUNTED) if c not in df]
    if missing:
        raise KeyError(missing[0])
    if "arrangement" in df and df["arrangement"].nunique() > 1:   # the unpruned model has none
        pruned = ~df["method"].map(is_baseline)
        df.loc[pruned, "method"] = df["method"] + " (" + df["arrangement"].astype(str) + ")"
    df = df.assign(attn=df["attn"] if "attn" in df else DEFAULT_ATTN,
                   **{c: math.nan for c in EFFICIENCY_COLUMNS if c not in df})   # --flops-only: no times
    return df[["method", "budget", "attn", *EFFICIENCY_COLUMNS]].rename(columns=EFFICIENCY_COLUMNS)


def validate_rows(run: Run) -> pd.DataFrame:
    """A ``validate`` run's rows, as :func:`efficiency_rows`'."""
    times = pd.read_csv(run.folder / "validate.csv")
    memory = pd.read_csv(run.folder / "memory.csv")
    ratios = pd.read_csv(run.folder / "ratios.csv")
    quantize = run.config.get("quantize", "none")
    if "quantize" in memory and (memory["quantize"] == quantize).any():
        memory = memory[memory["quantize"] == quantize]
    df = times[["method", "budget", "paper_prefill_ms", "cuda_time_reading_ms"]].merge(
        memory[["method", "budget", "paper_def_activation_gib"]], on=["method", "budget"], how="left").merge(
        ratios[["method", "budget", "paper_def_tflops"]], on=["method", "budget"], how="left")
    if len(ratios):
        base = float(ratios["paper_def_tflops"].iloc[0] * ratios["paper_def_flops_speedup"].iloc[0])
        df.loc[df["method"].map(is_baseline), "paper_def_tflops"] = base
    df = df.rename(columns={"paper_prefill_ms": "prefill_ms", "cuda_time_reading_ms": "cuda_ms",
                            "paper_def_activation_gib": "activation_gib", "paper_def_tflops": "tflops"})
    return df.assign(attn=str(run.config.get("attn") or DEFAULT_ATTN))


def number(value: float) -> str:
    """Three significant digits (``6.56e-06``, ``26.2``), a value of 1000 or more without an exponent."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _cell(value: float, base: float) -> str:
    """``6.56e-06 (42.6×)``: the value and the unpruned model's over it; ``—`` where not measured."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    if not math.isfinite(base) or value <= 0 or base == value:
        return number(value)
    return f"{number(value)} ({base / value:.1f}×)"


def wide(rows: pd.DataFrame, cuda: bool) -> tuple[pd.DataFrame, pd.DataFrame, list[int]]:
    """(numbers: one row per method and budget, a column per quantity and kernel with its ratio to ``none``;
    shown cells; the rows where a block starts)."""
    attns = list(dict.fromkeys(rows["attn"]))
    first = rows[rows["attn"] == attns[0]].reset_index(drop=True)
    order, blocks = ordered(first)
    base = order[order["method"].map(is_baseline)]
    keys = list(zip(order["method"], order["budget"], strict=True))
    base_key = (base["method"].iloc[0], base["budget"].iloc[0]) if len(base) else None
    data = order[["method", "budget"]].copy()
    shown = pd.DataFrame({"Method": order["method"],
                          "K": [budget_text(m, b) for m, b in keys]})
    for col, title, timed in QUANTITIES:
        for attn in attns if timed else [attns[0]]:
            g = rows[rows["attn"] == attn].set_index(["method", "budget"])[col]
            values = [float(g.get(k, math.nan)) for k in keys]
            if col == "cuda_ms" and not cuda:
                values = [math.nan] * len(values)
            ref = float(g.get(base_key, math.nan)) if base_key else math.nan
            name = f"{col}_{attn}" if timed and len(attns) > 1 else col
            data[name] = values
            data[f"{name}_none_over"] = [ref / v if v and math.isfinite(v) else math.nan for v in values]
            title_of = f"{title} ({attn})" if timed and len(attns) > 1 else title
            shown[title_of] = [_cell(v, ref) for v in values]
    return data, shown, blocks


def efficiency_table(run: Run, root: Path, name: str) -> Table:
    """The efficiency table of one ``efficiency`` or ``validate`` run (see the module)."""
    rows = efficiency_rows(run) if run.identity["study"] == "efficiency" else validate_rows(run)
    cuda = on_cuda(run.config.get("gpu") or run.config.get("device"))
    data, shown, blocks = wide(rows, cuda)
    data["weights"] = str(run.identity.get("weights"))
    return Table(name, efficiency_caption(run, root, rows, cuda), shown, data, blocks, run.folder,
                 cap.is_random(run))


def efficiency_caption(run: Run, root: Path, rows: pd.DataFrame, cuda: bool) -> str:
    """The efficiency table's caption from the run's record."""
    c = run.config
    timed = rows["prefill_ms"].notna().any()
    if run.identity["study"] == "efficiency":
        arch = c.get("arch") or {}
        what = f"`efficiency`, architecture {arch.get('name', run.identity.get('model'))}"
        n = f"median of {c.get('repeats')} repeats after {c.get('warmup')} warm-ups" if timed else ""
    else:
        what = f"`validate`, one {cap.input_kind(run)} ({c.get('image_id')})"
        n = cap.count(c.get("repeats", 1), "repeats") if timed else ""
    device = c.get("gpu") or c.get("device") or "device unrecorded"
    kernels = ", ".join(dict.fromkeys(rows["attn"]))
    times = (f"Times on {device} ({n}; attention: {kernels}). " if timed
             else "No times (a --flops-only run: FLOPs and activation are counted, not measured). ")
    busy = f"TIMES UNRELIABLE: {c['busy']}. " if c.get("busy") and timed else ""
    cuda_text = "" if cuda or not timed else "CUDA time is shown on a CUDA device only (this run's: CPU). "
    return (f"{cap.opening(run)}. Efficiency per method and budget ({what}). {times}{busy}TFLOPs and "
            "storing activation on the paper's definitions (analytic, the LLM's decoder layers); prefill on "
            "the paper's definition (the decoder-layer loop); CUDA time on this project's reading of the "
            "paper's "
            f"(the whole pipeline). {cuda_text}(n×): the unpruned model's value over the row's. Run: "
            f"{cap.where(run, root)}.")


__all__ = ["QUANTITIES", "efficiency_rows", "efficiency_table", "number", "on_cuda", "validate_rows", "wide"]
