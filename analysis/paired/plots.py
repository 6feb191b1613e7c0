"""The paired-comparison figures: each method's difference from a reference against the budget
(:func:`~analysis.common.presentation.stat_plots.plot_paired_differences`, shared with the grounding and video
figures)."""

from __future__ import annotations

from analysis.common.presentation.stat_plots import metric_slug, plot_paired_differences

__all__ = ["metric_slug", "plot_paired_differences"]
