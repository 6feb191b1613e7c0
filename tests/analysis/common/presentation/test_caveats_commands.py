"""Null results are named on screen and in ``summary.txt``, one line each with the likely cause: the commands
the docs show on the tiny random models (``eval-grounding --model unipixel-tiny-random:5``: every pruned row
equals ``none``; ``eval-video --model sa2va-tiny-random:0``: every J, F, J&F is 0), and the unpruned row's
budget shown as ``all`` (its stored 0 or 576 means every token)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.common.presentation.screen import with_intervals
from litelvlm.cli import main


def test_the_unpruned_budget_is_shown_as_all():
    summary = pd.DataFrame({"method": ["none", "litelvlm"], "budget": [0, 64], "ciou": [0.5, 0.4]})
    assert with_intervals(summary)["budget"].tolist() == ["all", 64]
    assert summary["budget"].tolist() == [0, 64]  # the table keeps its value


@pytest.mark.slow
def test_eval_grounding_names_rows_equal_to_none(coco128, tmp_path, capsys):
    out = tmp_path / "g"
    assert main(
        ["eval-grounding", "--model", "unipixel-tiny-random:5", "--refer-dir", str(coco128), "--limit-images",
                 "1", "--methods", "none,litelvlm,fastv", "--budgets", "64,16", "--out", str(out)]) == 0
    start, cause = "null result: every pruned row equals `none`", ("likely cause: these random weights give "
                                                                   "masks that do not depend on the tokens "
                                                                   "kept")
    lines = [r for r in capsys.readouterr().out.splitlines() if r.startswith(start)]
    assert len(lines) == 1 and lines[0].endswith(cause)
    text = (out / "summary.txt").read_text().splitlines()
    assert lines[0] in text and any(r.split()[:2] == ["none", "all"] for r in text)


@pytest.mark.slow
def test_eval_video_names_a_metric_that_is_zero_everywhere(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(
        ["eval-video", "--model", "sa2va-tiny-random:0", "--methods", "fastv,litelvlm", "--synthetic-videos",
                 "1", "--synthetic-frames", "4", "--out", str(out)]) == 0
    start = "null result: every J, F, J&F is 0 in every row; likely cause: these random weights"
    lines = [r for r in capsys.readouterr().out.splitlines() if r.startswith(start)]
    assert len(lines) == 1
    text = (out / "summary.txt").read_text().splitlines()   # the table itself: summary.txt (--verbose)
    assert lines[0] in text and any(r.split()[:2] == ["none", "all"] for r in text)
