"""Where a method's savings land, by Amdahl's law (this project's reading of a run's time by stage,
``stages.csv``: :mod:`litelvlm.cost.stages`).

A method that only shortens the LLM (``prefill`` and ``decode``) leaves every other stage of the call as it
was. With ``p`` the LLM's share of the unpruned call, Amdahl's law bounds the whole call's speed-up of such a
method by ``1 / (1 - p)`` (the LLM's time taken to nothing), and at the LLM speed-up ``s`` it measured by
``1 / ((1 - p) + p / s)``. A run below that second figure pays outside the LLM (a selection step, a longer
prompt's preparation); one above it saves outside the LLM (a method pruning inside the vision tower). The
table keeps, per pruned run, both speed-ups, both bounds and the milliseconds saved in each stage (negative:
added), each against the unpruned run of the same attention kernel where the frame has one (``attn``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.common.presentation.amdahl_figure import plot_amdahl
from analysis.common.presentation.style import save_figure
from litelvlm.cost.stages import OTHER, STAGES, TOTAL
from litelvlm.methods import is_baseline
from litelvlm.runs.io import write_csv

#: the stages a method that only shortens the LLM shortens
LLM_STAGES = ("prefill", "decode")
#: the stages outside the LLM, whose savings (or costs) a method brings on top of the LLM's
OUTSIDE = tuple(s for s in (*STAGES, OTHER) if s not in LLM_STAGES)
#: the columns of :func:`amdahl_frame` after the run's keys
COLUMNS = ["total_ms", "llm_ms", "base_total_ms", "llm_share_of_base", "speedup", "llm_speedup",
           "bound_llm_only", "bound_at_llm_speedup", "saved_outside_llm_ms",
           *(f"saved_{s}_ms" for s in (*STAGES, OTHER))]


def _ratio(a: float, b: float) -> float:
    return a / b if a > 0 and b > 0 else float("nan")


def amdahl_frame(stages: pd.DataFrame) -> pd.DataFrame:
    """One row per pruned run of ``stages`` (``stages.csv``'s frame: a row per run and stage with ``ms``), in
    its order, against the unpruned run of the same ``attn`` (the frame's other keys kept): see the module.
    Empty without an unpruned run."""
    keys = [k for k in ("attn", "method", "budget") if k in stages]
    if stages.empty or "method" not in stages:
        return pd.DataFrame(columns=[*keys, *COLUMNS])
    ms = stages.pivot_table(index=keys, columns="stage", values="ms", aggfunc="first", sort=False)
    ms = ms.reindex(columns=[*STAGES, OTHER, TOTAL]).fillna(0.0)
    rows = []
    for _, group in (ms.groupby(level="attn", sort=False) if "attn" in keys else [(None, ms)]):
        base = next((idx for idx in group.index if is_baseline(str(dict(zip(keys, idx))["method"]))), None)
        if base is None:
            continue
        b = group.loc[base]
        b_llm = float(b[list(LLM_STAGES)].sum())
        p = b_llm / float(b[TOTAL]) if b[TOTAL] > 0 else float("nan")
        for idx, r in group.iterrows():
            if is_baseline(str(dict(zip(keys, idx))["method"])):
                continue
            llm = float(r[list(LLM_STAGES)].sum())
            s = _ratio(b_llm, llm)
            saved = {f"saved_{st}_ms": float(b[st] - r[st]) for st in (*STAGES, OTHER)}
            rows.append({**dict(zip(keys, idx)), "total_ms": float(r[TOTAL]), "llm_ms": llm,
                         "base_total_ms": float(b[TOTAL]), "llm_share_of_base": p,
                         "speedup": _ratio(float(b[TOTAL]), float(r[TOTAL])),
                         "llm_speedup": s, "bound_llm_only": 1 / (1 - p) if p < 1 else math.inf,
                         "bound_at_llm_speedup": 1 / ((1 - p) + p / s) if s > 0 else float("nan"),
                         "saved_outside_llm_ms": sum(saved[f"saved_{st}_ms"] for st in OUTSIDE), **saved})
    return pd.DataFrame(rows, columns=[*keys, *COLUMNS])


def llm_lengths(rows: pd.DataFrame, column: str = "n_tokens") -> dict:
    """{(method, budget): the LLM's sequence length} of a run's rows (``efficiency.csv``'s ``n_tokens``,
    ``validate.csv``'s ``seq_len``), where they hold it."""
    if column not in rows:
        return {}
    return {(m, b): int(n) for m, b, n in zip(rows["method"], rows["budget"], rows[column]) if pd.notna(n)}


def _shares(stages: pd.DataFrame, base) -> str:
    """The unpruned run's stages outside the LLM, largest share first (those under 0.5% left out)."""
    mine = stages[(stages["method"] == base) & stages["stage"].isin(OUTSIDE)]
    if "attn" in mine and mine["attn"].notna().any():
        mine = mine[mine["attn"] == mine["attn"].iloc[0]]
    parts = sorted(((float(s), st) for s, st in zip(mine["share"], mine["stage"]) if s >= 0.005),
                   key=lambda x: -x[0])
    return ", ".join(f"{st} {s:.0%}" for s, st in parts)


def amdahl_lines(table: pd.DataFrame, stages: pd.DataFrame, method: str | None = None, most: int = 6,
                 lengths: dict | None = None) -> list[str]:
    """The terminal's lines: the LLM's share of the unpruned call with the other stages' and the bound on a
    method that only shortens the LLM, then ``method``'s runs (or the first ``most``) each with its measured
    speed-up, the bound at its LLM speed-up and the ms it saved outside the LLM, by stage (negative: added;
    [] without rows); each at the LLM sequence lengths ``lengths`` ({(method, budget): tokens}) gives."""
    if table.empty:
        return []
    first, lengths = table.iloc[0], lengths or {}
    base = next(m for m in stages["method"].unique() if is_baseline(str(m)))
    base_len = next((n for (m, _), n in lengths.items() if m == base), None)
    at = f" at {int(base_len)} LLM tokens" if base_len is not None else ""
    lines = [f"Amdahl (this project's reading): the LLM is {first['llm_share_of_base']:.0%} of {base}'s "
             f"whole call{at} ({_shares(stages, base)}): a method that only shortens the LLM makes the call "
             f"at most {first['bound_llm_only']:.2f}x faster"]
    mine = table[table["method"] == method] if method in set(table["method"]) else table.head(most)
    for _, r in mine.iterrows():
        outside = [(st, r[f"saved_{st}_ms"]) for st in OUTSIDE if abs(r[f"saved_{st}_ms"]) >= 0.05]
        where = f" ({', '.join(f'{st} {v:+.1f}' for st, v in outside)})" if outside else ""
        kernel = f" [{r['attn']}]" if "attn" in r and isinstance(r["attn"], str) else ""
        n = lengths.get((r["method"], r["budget"]))
        seq = f" (sequence {base_len} -> {n} tokens)" if None not in (base_len, n) else ""
        lines.append(f"  {r['method']}@{r['budget']}{kernel}: {r['speedup']:.2f}x measured; "
                     f"{r['bound_at_llm_speedup']:.2f}x if only its LLM ({r['llm_speedup']:.2f}x) had "
                     f"changed; saved outside the LLM {r['saved_outside_llm_ms']:+.1f} ms{where}{seq}")
    return lines


def write_amdahl(out: str | Path, stages: pd.DataFrame, model: str, figures: bool = True,
                 notes: Iterable[str] = (), lengths: dict | None = None) -> list[str]:
    """Write ``amdahl.csv`` of ``stages`` (``stages.csv``'s frame) into ``out`` and, with ``figures``,
    ``amdahl.png`` (each run at its LLM sequence length ``lengths`` gives), through the run's transaction;
    returns the names written (nothing without an unpruned run)."""
    table = amdahl_frame(stages)
    if table.empty:
        return []
    write_csv(Path(out) / "amdahl.csv", table)
    if not figures:
        return ["amdahl.csv"]
    save_figure(plot_amdahl(table, model, notes, lengths), out, "amdahl", formats=("png",))
    return ["amdahl.csv", "amdahl.png"]


__all__ = ["COLUMNS", "LLM_STAGES", "OUTSIDE", "amdahl_frame", "amdahl_lines", "llm_lengths", "write_amdahl"]
