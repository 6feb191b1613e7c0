"""The terminal's and text files' view of a summary: each figure with its interval in one cell, no weights column
(the command prints a banner), at most 10 columns."""

from __future__ import annotations

import math

import pandas as pd

from analysis.common.screen import MAX_COLUMNS, with_intervals


def test_with_intervals_folds_each_interval_into_its_figure():
    cols = {"method": ["none", "litelvlm"], "budget": [576, 64]}
    for m in ("J", "F", "J&F", "own_J", "own_F"):  # a video summary with UniPixel's own score: 18 columns
        cols |= {m: [0.5, 0.25], f"{m}_lo": [0.4, math.nan], f"{m}_hi": [0.6, math.nan]}
    summary = pd.DataFrame({**cols, "n": [2, 2], "weights": ["random", "random"]})
    shown = with_intervals(summary, digits=2)
    assert list(shown.columns) == ["method", "budget", "J", "F", "J&F", "own_J", "own_F", "n"]
    assert len(shown.columns) <= MAX_COLUMNS
    assert shown["J"].tolist() == ["0.50 [0.40, 0.60]", "0.25"]  # no interval: the figure alone
    assert list(summary.columns)[-1] == "weights" and len(summary.columns) == 19  # the data keep every column
