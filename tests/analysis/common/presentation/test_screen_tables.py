"""The terminal's and text files' view of a summary: each figure with its interval in one cell, no weights
column (the command prints a banner), at most 10 columns."""

from __future__ import annotations

import math

import pandas as pd

from analysis.common.presentation.screen import MAX_COLUMNS, with_intervals


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


def test_a_full_table_is_printed_only_with_verbose(capsys):
    from analysis.common.runs.command import Screen

    quiet, loud = Screen(), Screen(verbose=True)
    quiet.show_table("a\nb\nc", "out/summary.csv", "the table")
    assert capsys.readouterr().out == "the table: out/summary.csv (--verbose prints it)\n"
    assert quiet.file_names(["f/a.png", "f/a.pdf", "f/b.png"]) == "3 files in f (--verbose lists them)"
    # two names are as short as a count
    assert quiet.file_names(["f/a.png", "f/a.pdf"]) == "f/a.png, f/a.pdf"
    loud.show_table("a\nb\nc", "out/summary.csv", "the table")
    assert capsys.readouterr().out == "a\nb\nc\n"
    assert loud.file_names(["f/a.png", "f/a.pdf", "f/b.png"]) == "f/a.png, f/a.pdf, f/b.png"


def test_each_warning_is_shown_once_per_command_by_every_handler():
    """``litelvlm.cli.WarnOnce``: a repeated warning text is dropped, by each handler that carries the filter
    (the first record passes all of them); other levels and other texts pass."""
    import logging

    from litelvlm.cli import WarnOnce

    once = WarnOnce()

    def record(level: int, text: str) -> logging.LogRecord:
        return logging.LogRecord("analysis.x", level, __file__, 1, text, None, None)

    first = record(logging.WARNING, "24 of 48 sentences left out")
    assert once.filter(first) and once.filter(first)  # a second handler shows the same record
    assert not once.filter(record(logging.WARNING, "24 of 48 sentences left out"))
    assert once.filter(record(logging.ERROR, "24 of 48 sentences left out"))
    assert once.filter(record(logging.WARNING, "another warning"))
    info = record(logging.INFO, "layer 3")
    assert once.filter(info) and once.filter(record(logging.INFO, "layer 3"))
