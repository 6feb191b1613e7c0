"""Tables for the terminal and text files: a reader's view of a summary (the csv files keep every column)."""

from __future__ import annotations

import math

import pandas as pd

#: the most columns a human-facing table shows
MAX_COLUMNS = 10


def with_intervals(summary: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``summary`` with each figure that has ``<name>_lo`` / ``<name>_hi`` columns shown as one ``v [lo, hi]``
    cell (``v [lo, hi ±mc]`` with the interval's Monte Carlo error ``<name>_mc``), and the ``weights`` column left out (the command prints a banner): at most :data:`MAX_COLUMNS`
    columns in the usual cases."""
    out = summary.drop(columns=[c for c in ("weights",) if c in summary])

    def cell(v, lo, hi, mc) -> str:
        if not isinstance(v, (int, float)) or math.isnan(v):
            return ""
        if isinstance(lo, float) and isinstance(hi, float) and not (math.isnan(lo) or math.isnan(hi)):
            err = f" ±{mc:.{digits}f}" if isinstance(mc, float) and math.isfinite(mc) else ""
            return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}{err}]"
        return f"{v:.{digits}f}"

    for col in [c for c in out.columns if f"{c}_lo" in out and f"{c}_hi" in out]:
        mc = out[f"{col}_mc"] if f"{col}_mc" in out else [None] * len(out)
        out[col] = [cell(v, lo, hi, e) for v, lo, hi, e in zip(out[col], out[f"{col}_lo"], out[f"{col}_hi"], mc)]
        out = out.drop(columns=[c for c in (f"{col}_lo", f"{col}_hi", f"{col}_mc") if c in out])
    return out
