"""The accuracy tables' rows (:mod:`analysis.tables.accuracy`), on hand-made tables: the order (the unpruned
model first, budgets largest first, LiteLVLM first in each), the share of ``none`` and the marks read from
``comparisons.csv``'s Holm-adjusted p, never recomputed."""

from __future__ import annotations

import math

import pandas as pd

from analysis.tables.accuracy import (
    ALPHA,
    GROUNDING,
    budget_text,
    marks,
    metric_numbers,
    ordered,
    statistics_text,
)


def test_rows_are_none_then_budgets_largest_first_with_litelvlm_first():
    summary = pd.DataFrame({"method": ["random", "litelvlm", "none", "random", "litelvlm"],
                            "budget": [64, 64, 576, 192, 192]})
    rows, blocks = ordered(summary)
    assert list(zip(rows["method"], rows["budget"], strict=True)) == [
        ("none", 576), ("litelvlm", 192), ("random", 192), ("litelvlm", 64), ("random", 64)]
    assert blocks == [0, 1, 3]
    assert budget_text("none", 576) == "all (576)" and budget_text("none", 0) == "all"
    assert budget_text("litelvlm", 64) == "64"


def _comparisons() -> pd.DataFrame:
    rows = [("ciou", 64, "random", "none", 0.8, 0.7, 0.9, 0.01), ("ciou", 64, "random", "litelvlm", 1.1,
                                                                  -math.inf, math.inf, 0.04),
            ("ciou", 64, "litelvlm", "none", 0.9, 0.85, 0.95, ALPHA)]
    return pd.DataFrame(rows, columns=["metric", "budget", "method", "reference", "ratio", "ratio_lo",
                                       "ratio_hi", "p_adjusted"])


def test_share_and_marks_come_from_the_paired_tests():
    row = pd.Series({"method": "random", "budget": 64, "ciou": 0.4, "ciou_lo": 0.3, "ciou_hi": 0.5})
    got = metric_numbers(row, "ciou", 0.5, _comparisons())
    assert (got["ciou_pct_none"], got["ciou_pct_none_lo"], got["ciou_pct_none_hi"]) == (80.0, 70.0, 90.0)
    assert got["ciou_p_vs_none"] == 0.01 and got["ciou_p_vs_litelvlm"] == 0.04 and marks(got, "ciou") == "†‡"
    lite = metric_numbers(pd.Series({"method": "litelvlm", "budget": 64, "ciou": 0.45}), "ciou", 0.5,
                          _comparisons())
    assert marks(lite, "ciou") == "" and math.isnan(lite["ciou_p_vs_litelvlm"])   # p = ALPHA: not below it
    untested = metric_numbers(row, "ciou", 0.5, None)   # a run without comparisons.csv: the share, no marks
    assert untested["ciou_pct_none"] == 80.0 and math.isnan(untested["ciou_pct_none_lo"])
    assert marks(untested, "ciou") == ""


def test_the_caption_names_few_units_missing_tests_and_heavy_tails():
    summary = pd.DataFrame({"method": ["none"], "budget": [576], "heavy_tails": ["giou"]})
    text = statistics_text(GROUNDING, 2, summary, tested=False)
    assert "no comparisons.csv: no marks" in text and "With n = 2 images no interval is shown" in text
    assert "Heavy tails in gIoU (this project's label)" in text
    assert "Heavy tails" not in statistics_text(GROUNDING, 5, summary.drop(columns="heavy_tails"), True)


def test_the_caption_explains_marks_only_where_a_mark_is_possible():
    """Under the paired test's 6 units no p reaches 0.05: the caption says no difference can be marked, and
    explains the marks from 6 units on."""
    summary = pd.DataFrame({"method": ["none"], "budget": [576]})
    for units in (3, 5):
        text = statistics_text(GROUNDING, units, summary, tested=True, family=2)
        said = f"With n = {units} images no difference can be marked (the paired test needs 6"
        assert "† differs" not in text and said in text, text
    assert "† differs from none" in statistics_text(GROUNDING, 6, summary, tested=True, family=2)
