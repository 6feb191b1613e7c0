"""Every registered figure set is swept over n or draws no interval: one row per figure set, naming the test
that draws its intervals at n = 1..30 (drawn exactly from ``MIN_UNITS`` units, and the figure saying n below
that), or the reason it has none (checked on its cases' figures in ``test_figure_set_geometry``)."""

from __future__ import annotations

import ast
from pathlib import Path

from analysis.figures import registry

TESTS = Path(__file__).resolve().parents[2]
STAT = "analysis/common/presentation/test_stat_plots_few_units.py"
SWEEP_ALL = "test_every_n_from_1_to_30_draws_intervals_exactly_from_3_units"

#: figure set -> (test file under tests/, the test that sweeps n for its figures with intervals)
SWEPT = {
    "reversal": ("analysis/reversal/test_plots_units.py",
                 "test_reversal_figures_draw_intervals_exactly_from_3_images"),
    "reversal_grid": ("analysis/reversal/test_plots_units.py",
                      "test_the_space_figure_draws_intervals_exactly_from_3_images"),
    "sink": ("analysis/sink/test_plots_units.py",
             "test_sink_ablation_bars_draw_intervals_exactly_from_3_images"),
    "importance": ("analysis/importance/test_plots_units.py",
                   "test_importance_figures_draw_intervals_exactly_from_3_images"),
    "grounding": (STAT, SWEEP_ALL),
    "grounding_merged_grid": (STAT, SWEEP_ALL),
    "video": (STAT, SWEEP_ALL),
    "paired": (STAT, SWEEP_ALL),
}
#: figure set -> why it draws no interval at all
NO_INTERVALS = {
    "retention": "it draws one image's kept tokens: a picture, no estimate",
    "efficiency": "FLOPs and bytes are counted, not sampled; times are medians of one machine's calls",
    "validate": "memory is measured once per precision; the mask agreement is one run's mean",
    "positions": "it draws one image's switched positions: a picture, no estimate",
}


def test_every_figure_set_is_swept_over_n_or_draws_no_interval():
    assert not set(SWEPT) & set(NO_INTERVALS)
    assert set(SWEPT) | set(NO_INTERVALS) == set(registry.FIGURE_SETS)


def test_every_named_sweep_exists():
    for name, (path, test) in SWEPT.items():
        tree = ast.parse((TESTS / path).read_text())
        assert test in {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}, (name, path, test)
