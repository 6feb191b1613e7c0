"""Sink's ablation bars from 1 to 30 images: an interval is drawn exactly from 3 images on, and below that
the figure says n and that no interval exists (the statistics are swept at every n in
``tests/analysis/common/stats/test_bootstrap_min_units.py``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.sink import plots  # noqa: E402
from tests.figure_checks import drawn_intervals, says_n  # noqa: E402


def _ablation(n_images: int) -> pd.DataFrame:
    """An ablation summary of three text representations at two vision layers over ``n_images`` images, its
    intervals as the statistics would give them (present from 3 images; NaN below)."""
    lo, hi = (0.5, 0.7) if n_images >= 3 else (float("nan"), float("nan"))
    return pd.DataFrame([{"breakdown": "all", "group": "all", "variant": v, "layer": layer,
                          "n_sentences": 2 * n_images, "n_images": n_images, "auroc_reversed_mean": 0.6,
                          "auroc_reversed_ci_low": lo, "auroc_reversed_ci_high": hi}
                         for v in ("original", "content_mean", "sos_masked_from0") for layer in (1, 2)])


def test_sink_ablation_bars_draw_intervals_exactly_from_3_images():
    for n in (*range(1, 11), 20, 30):
        try:
            fig, ax = plots.plot_ablation_bars(_ablation(n))
            assert (drawn_intervals(fig) > 0) == (n >= 3), n
            assert ("no interval" in ax.get_ylabel()) == (n < 3), ax.get_ylabel()
            assert any(f"n = {n} image" in t for t in says_n(fig)), says_n(fig)
        finally:
            plt.close("all")


def test_a_placeholder_interval_under_3_images_is_not_drawn():
    """A run written before the rule (2-image percentile intervals in its table) draws no interval either."""
    old = _ablation(2).assign(auroc_reversed_ci_low=0.0, auroc_reversed_ci_high=1.0)
    try:
        fig, ax = plots.plot_ablation_bars(old)
        assert drawn_intervals(fig) == 0 and "no interval" in ax.get_ylabel()
    finally:
        plt.close("all")
