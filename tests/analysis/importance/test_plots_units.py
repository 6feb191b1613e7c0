"""The importance figures from 1 to 30 images: a correlation's band (by layer, the mission's attention panel)
and bar (the mission's attribution panel) are drawn exactly from 3 images on, and the figure says n below.
Every n around the edge and a few above it (a figure is 0.2 CPU-s; the statistics themselves are swept at
every n in ``tests/analysis/common/stats/test_bootstrap_min_units.py``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.importance import plots  # noqa: E402
from tests.figure_checks import drawn_intervals  # noqa: E402


def _summary(n_images: int) -> pd.DataFrame:
    rows = []
    for signal in ("clip_rev_sim", "method:fastv"):
        for layer in range(3):
            rows.append({"clip_signal": signal, "llm_signal": "attention", "query": "seg", "layer": layer})
        rows.append({"clip_signal": signal, "llm_signal": "saliency", "query": None, "layer": -1})
    out = pd.DataFrame(rows).assign(area_bin="all", n_sentences=2 * n_images, n_images=n_images)
    for m in ("spearman", "kendall"):
        out = out.assign(**{f"{m}_mean": 0.2, f"{m}_lo": 0.1, f"{m}_hi": 0.3})
    return out


def test_importance_figures_draw_intervals_exactly_from_3_images():
    for n in (1, 2, 3, 4, 5, 6, 10, 20, 30):
        summary = _summary(n)
        try:
            fig, _ = plots.plot_importance_by_layer(summary)
            assert (drawn_intervals(fig) > 0) == (n >= 3), n
            fig, _ = plots.plot_mission_correlation(summary, num_layers=3)
            assert (drawn_intervals(fig) > 0) == (n >= 3), n
            said = " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
            assert (f"n = {n}" in said) and (("no interval" in said) == (n < 3)), (n, said)
        finally:
            plt.close("all")
