"""``validate --repeats``: the calls of every (method, K) in interleaved rounds (A B C A B C ...), each kept
as it finishes so that a stopped run resumes in its round (:func:`measure_rounds`), and one table row of
their median times (:func:`median_row`)."""

from __future__ import annotations

import zlib
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from analysis.common.presentation.stage_plots import STAGE_MS
from analysis.validate.reference import COMPARED
from analysis.validate.report import ROW_COLUMNS
from litelvlm.runs.parts import PartStore

#: Columns that are the median over repeated calls (the rest are the same in every call, or the last call's).
TIMES = ("prefill_ms", "e2e_ms", "selection_ms", "paper_prefill_ms", "cuda_time_reading_ms",
         *STAGE_MS.values())


#: The timed quantities whose per-round values are kept (``<name>_rounds``), for the spread of the paired
#: ratios and the whole call's steadiness (:func:`analysis.validate.call_roofline.unsteady_lines`).
ROUND_TIMES = ("prefill_ms", "paper_prefill_ms", "stage_total_ms")


def round_id(method: str, k: int, round_: int) -> int:
    """The stable id of one call of round ``round_`` of (method, K) in ``OUT/rounds``."""
    return zlib.crc32(f"{method}@{k}#{round_}".encode())


def measure_rounds(out: Path, todo: list[tuple[str, int]], repeats: int,
                   measure) -> dict[tuple[str, int], list[dict]]:
    """``repeats`` interleaved rounds over ``todo`` ((method, K): A B C A B C ...) of ``measure(method, K) ->
    row``; every call is kept under ``OUT/rounds`` as it finishes, so an interrupted run resumes in the round
    it stopped in. Returns each pair's rows in round order."""
    store = PartStore(out / "rounds")
    done = store.done()
    for r in tqdm(range(repeats), desc=f"validate ({len(todo)} runs per round)"):
        for method, budget in todo:
            if round_id(method, budget, r) not in done:
                row = measure(method, budget)
                keep = {k: row[k] for k in ROW_COLUMNS + COMPARED if k in row}
                store.write([round_id(method, budget, r)], pd.DataFrame([{**keep, "round": r}]))
    rows = pd.concat([f for f in store.frames() if not f.empty], ignore_index=True)
    calls = {}
    for method, budget in todo:
        mine = rows[(rows["method"] == method) & (rows["budget"] == budget) & (rows["round"] < repeats)]
        calls[(method, budget)] = [r.drop(labels="round").to_dict() for _,
                                   r in mine.sort_values("round").iterrows()]
    return calls


def median_row(rows: list[dict], group: str = "") -> dict:
    """One table row from repeated calls of one (method, budget): median times (each round's kept in
    ``<time>_rounds``, with ``round_group`` naming the interleaved rounds they belong to), the largest memory
    figures."""
    out = {k: rows[-1][k] for k in ROW_COLUMNS}
    for k in TIMES:  # a call kept before a column existed (a resumed run) has none of it
        out[k] = float(pd.Series([r.get(k, float("nan")) for r in rows], dtype=float).median())
    for k in ROUND_TIMES:
        out[f"{k}_rounds"] = " ".join(repr(float(r.get(k, float("nan")))) for r in rows)
    if COMPARED[0] in rows[-1]:  # the worst agreement of the calls
        out[COMPARED[0]] = min(r[COMPARED[0]] for r in rows)
        out[COMPARED[1]] = max(r[COMPARED[1]] for r in rows)
    out["round_group"] = group
    for k in ("peak_rss_gib", "activation_mb", "llm_activation_mb", "max_logit_diff_none"):
        out[k] = max(r[k] for r in rows)
    for k in ("text_ids_equal", "masks_equal_none"):
        out[k] = all(r[k] for r in rows)
    out["repeats"] = len(rows)
    return out
