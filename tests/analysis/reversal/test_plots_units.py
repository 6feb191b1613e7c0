"""The reversal figures from 1 to 30 images: the AUROC's band (by layer) and bars (by group) are drawn exactly
from 3 images on, and the figure says n below (the statistics are swept at every n in
``tests/analysis/common/stats/test_bootstrap_min_units.py``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.reversal import plots  # noqa: E402
from tests.figure_checks import drawn_intervals, overlapping_texts, texts_past_canvas  # noqa: E402


def _summary(n_images: int) -> pd.DataFrame:
    groups = (("all", "all"), ("area_bin", "[0,0.02)"), ("area_bin", "[0.02,1)"))
    rows = [{"breakdown": b, "group": g, "layer": layer} for layer in (0, 1, 2) for b, g in groups]
    return pd.DataFrame(rows).assign(model="m", n_sentences=2 * n_images, n_images=n_images,
                                     auroc_reversed_mean=0.6, auroc_reversed_ci_low=0.5,
                                     auroc_reversed_ci_high=0.7)


def test_reversal_figures_draw_intervals_exactly_from_3_images():
    for n in (1, 2, 3, 4, 5, 6, 10, 20, 30):
        summary = _summary(n)
        try:
            _, ax = plots.plot_auroc_by_layer(summary)
            assert (drawn_intervals(ax.figure) > 0) == (n >= 3), n
            assert ("no interval" in ax.get_title()) == (n < 3) and (f"n = {n}" in ax.get_title()) == (n < 3)
            _, ax = plots.plot_reversal_breakdown(summary, "area_bin")
            assert (drawn_intervals(ax.figure) > 0) == (n >= 3), n
            assert ("no interval where n < 3 images" in ax.get_ylabel()) == (n < 3), ax.get_ylabel()
            assert [t.get_text() for t in ax.texts] == [f"n={n}"] * 2
        finally:
            plt.close("all")


def test_the_space_figure_draws_intervals_exactly_from_3_images():
    """The merged-grid figure (a run in the LLM's input space beside a CLIP run) says n on every run's row."""
    for n in (1, 2, 3, 4, 5, 6, 10, 20, 30):
        lo, hi = (0.5, 0.7) if n >= 3 else (float("nan"), float("nan"))
        summary = pd.DataFrame([{"breakdown": "all", "group": "all", "model": m, "space": sp, "layer": la,
                                 "n_sentences": 2 * n, "n_images": n, "auroc_reversed_mean": 0.6,
                                 "auroc_reversed_ci_low": lo, "auroc_reversed_ci_high": hi}
                                for m, sp, la in (("grid", "llm", 0), ("clip", "clip", 1),
                                                  ("clip", "clip", 2))])
        try:
            fig, ax = plots.plot_space_auroc(summary)
            assert (drawn_intervals(fig) > 0) == (n >= 3), n
            assert ("no interval" in ax.get_xlabel()) == (n < 3), ax.get_xlabel()
            assert f"n = {n} images" in ax.get_xlabel(), ax.get_xlabel()
        finally:
            plt.close("all")


def test_the_breakdowns_labels_stand_apart_at_every_number_of_groups():
    """Every area bin the study writes, from 1 to 7 of them (four intervals' labels touched when level), and
    short category names: no two labels over each other, no label past the figure."""
    bins = ("[0,0.02)", "[0.02,0.05)", "[0.05,0.1)", "[0.1,0.2)", "[0.2,0.4)", "[0.4,0.7)", "[0.7,1]")
    for groups in [bins[:n] for n in range(1, len(bins) + 1)] + [("dog", "cat", "car", "bus")]:
        summary = pd.DataFrame([{"breakdown": "area_bin", "group": g, "layer": 2} for g in groups]).assign(
            model="m", n_images=5, auroc_reversed_mean=0.6, auroc_reversed_ci_low=0.5,
            auroc_reversed_ci_high=0.7)
        try:
            fig, _ = plots.plot_reversal_breakdown(summary, "area_bin")
            assert overlapping_texts(fig) == [] and texts_past_canvas(fig) == [], groups
        finally:
            plt.close("all")
