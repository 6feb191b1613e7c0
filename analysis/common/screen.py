"""Tables for the terminal and text files: a reader's view of a summary (the csv files keep every column)."""

from __future__ import annotations

import math

import pandas as pd

from litelvlm.methods import BASELINE

#: the most columns a human-facing table shows
MAX_COLUMNS = 10


def with_intervals(summary: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``summary`` with each figure that has ``<name>_lo`` / ``<name>_hi`` columns shown as one ``v [lo, hi]``
    cell, the ``weights`` column left out (the command prints a banner) and the unpruned baseline's budget shown as
    ``all`` (its stored 0 or 576 means every token): at most :data:`MAX_COLUMNS` columns in the usual cases."""
    out = summary.drop(columns=[c for c in ("weights",) if c in summary])
    if "method" in out and "budget" in out:
        out["budget"] = ["all" if m == BASELINE else b for m, b in zip(out["method"], out["budget"])]

    def cell(v, lo, hi) -> str:
        if not isinstance(v, (int, float)) or math.isnan(v):
            return ""
        if isinstance(lo, float) and isinstance(hi, float) and not (math.isnan(lo) or math.isnan(hi)):
            return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
        return f"{v:.{digits}f}"

    for col in [c for c in out.columns if f"{c}_lo" in out and f"{c}_hi" in out]:
        out[col] = [cell(v, lo, hi) for v, lo, hi in zip(out[col], out[f"{col}_lo"], out[f"{col}_hi"])]
        out = out.drop(columns=[f"{col}_lo", f"{col}_hi"])
    return out
