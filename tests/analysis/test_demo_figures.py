"""The demo's figures pass a reviewer's checks (``tests/figure_checks.py``): the selection grid of every
CLIP-side method keeps its titles readable (at most :data:`MAX_METHOD_COLUMNS` methods a row, no title over
another), and the AUROC histogram of a model read from a folder names it without the machine's path."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.demo.plots import MAX_METHOD_COLUMNS, plot_demo_reversal_hist, plot_demo_selection_grid  # noqa: E402
from tests.figure_checks import machine_paths, overlapping_texts, reviewer_flaws  # noqa: E402

METHODS = ("litelvlm", "litelvlm-ctx", "litelvlm-context", "clip_topsim", "random", "vispruner", "visionzip",
           "prumerge", "prumerge+", "tome", "hiprune")


def test_the_selection_grid_of_eleven_methods_wraps_and_keeps_its_titles_apart():
    rng = np.random.default_rng(0)
    images = [rng.random((48, 48, 3)) for _ in range(2)]
    inside = [np.arange(36) < 6, np.zeros(36, bool)]
    selections = {m: [rng.choice(36, 8, replace=False) for _ in images] for m in METHODS}
    fig, axes = plot_demo_selection_grid(images, ["the bowl", "a cat on the left"], inside, selections,
                                         (6, 6), budget=8)
    try:
        assert axes.shape[1] == 1 + MAX_METHOD_COLUMNS
        titles = [ax.get_title() for ax in axes.flat if ax.axison and ax.get_title()]
        heads = tuple(f"{m}, K = 8 of 36\n" for m in METHODS)
        assert sum(t.startswith(heads) for t in titles) == 2 * len(METHODS)
        assert overlapping_texts(fig) == []
        assert {k: v for k, v in reviewer_flaws(fig).items() if v} == {}
    finally:
        plt.close(fig)


def test_the_auroc_histogram_names_a_folders_model_without_the_machines_path(tmp_path):
    df = pd.DataFrame({"layer": [1, 1, 1, 2, 2, 2], "auroc_reversed": [0.4, 0.6, 0.7, 0.5, 0.5, 0.9]})
    fig, ax = plot_demo_reversal_hist(df, model=str(tmp_path / "toy" / "weights"))
    try:
        assert "(toy/weights)" in ax.get_title() and str(tmp_path) not in ax.get_title()
        assert machine_paths(fig) == []
    finally:
        plt.close(fig)
