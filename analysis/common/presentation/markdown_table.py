"""A table as GitHub-flavoured markdown (the reports of ``efficiency`` and ``validate``)."""

from __future__ import annotations

import math

import pandas as pd


def finite(*values: object) -> bool:
    """Whether every value is a finite number (what a table shows as a number; anything else is a dash)."""
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def to_markdown(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """A GitHub-flavoured markdown table (NaN shown as an em dash)."""
    def fmt(v):
        if isinstance(v, float):
            return "—" if math.isnan(v) else floatfmt.format(v)
        return str(v)

    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"
