"""No interval is drawn over fewer than 3 units (images, videos): the grounding and video figures draw the
points without their bars or band, and say n in their title; from 3 units on the intervals are drawn. The
paired figure's intervals invert the swap test, which needs 6 units for a 95% interval
(``permutation.min_units``): drawn from 6."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

from analysis.common.presentation.stat_plots import plot_paired_differences  # noqa: E402
from analysis.grounding.plots import plot_iou_vs_budget  # noqa: E402
from analysis.video.plots import VideoLabels, plot_jf_vs_budget  # noqa: E402


def _summary(metric: str, units: int, unit: str) -> pd.DataFrame:
    rows = [("none", 576, 0.5), ("litelvlm", 64, 0.4), ("litelvlm", 16, 0.3), ("random", 64, 0.2),
            ("random", 16, 0.1)]
    return pd.DataFrame([{"method": m, "budget": b, metric: v, f"{metric}_lo": v - 0.05,
                          f"{metric}_hi": v + 0.05, f"{metric}_mc": 0.0, "unit": unit, "units": units}
                         for m, b, v in rows])


def _bars_and_bands(ax) -> int:
    return sum(isinstance(c, (LineCollection, PolyCollection)) for c in ax.collections) + len(ax.patches)


def _grounding(units):
    return plot_iou_vs_budget(_summary("ciou", units, "image"), "ciou")[1]


def _video(units):
    return plot_jf_vs_budget(_summary("J&F", units, "video"), "J&F", labels=VideoLabels(name="VideoGLaMM"))[1]


def _paired(units):
    d = pd.DataFrame([{"metric": "ciou", "reference": "none", "method": m, "budget": b, "difference": -0.1,
                       "difference_lo": -0.2, "difference_hi": 0.0, "p": 0.5, "p_adjusted": 1.0,
                       "family_size": 2, "unit": "image", "units": units}
                      for m in ("litelvlm", "random") for b in (64, 16)])
    return plot_paired_differences(d, "ciou", "none")[1]


#: the fewest units each figure draws an interval over
NEED = {_grounding: 3, _video: 3, _paired: 6}


@pytest.mark.parametrize("draw", [_grounding, _video, _paired], ids=["grounding", "video", "paired"])
def test_no_interval_below_three_units_and_the_title_says_n(draw):
    few, enough = draw(2), draw(NEED[draw])
    try:
        assert _bars_and_bands(few) == 0 and "n = 2" in few.get_title() and "no interval" in few.get_title()
        assert _bars_and_bands(enough) > 0 and "no interval" not in enough.get_title()
    finally:
        plt.close("all")


@pytest.mark.parametrize("draw", [_grounding, _video, _paired], ids=["grounding", "video", "paired"])
def test_every_n_from_1_to_30_draws_intervals_exactly_from_3_units(draw):
    """The same rule at every n: nothing drawn and n said under 3 units (6 for the paired test), the intervals
    drawn from there on; an interval NaN at both ends (a statistic with none at that n) is never drawn."""
    for units in range(1, 31):
        ax = draw(units)
        try:
            drawn = _bars_and_bands(ax) > 0
            assert drawn == (units >= NEED[draw]), units
            assert ("no interval" in ax.get_title()) == (units < NEED[draw]), (units, ax.get_title())
            if units < NEED[draw]:
                assert f"n = {units}" in ax.get_title()
        finally:
            plt.close("all")


def test_an_interval_with_no_ends_is_not_drawn_at_any_n():
    for units in (3, 4, 10, 30):
        summary = _summary("ciou", units, "image").assign(ciou_lo=float("nan"), ciou_hi=float("nan"))
        ax = plot_iou_vs_budget(summary, "ciou")[1]
        try:
            assert _bars_and_bands(ax) == 0, units
        finally:
            plt.close("all")
