"""``litelvlm figures``, the command layer: ``--list`` and ``--write-notebooks`` answered at once, else the
options checked (``options``, light) and the drawing imported (``compute``: matplotlib and every study's
figure set) by :func:`analysis.common.runs.command.study_run`."""

from __future__ import annotations

import argparse

from analysis.common.runs.command import study_run
from analysis.figures.options import FiguresArgs, add_arguments, check_args
from litelvlm.lazy import Lazy

__all__ = ["add_arguments", "draw", "run"]

#: draw the selected figure sets from the options (``draw(FiguresArgs(results=..., out=...))``)
draw = study_run(FiguresArgs, Lazy("analysis.figures.compute", "run_figures"), check_args)


def run(args: FiguresArgs | argparse.Namespace) -> int:
    """``litelvlm figures``: list the figure sets, regenerate the notebooks, or draw the selected figure
    sets."""
    if getattr(args, "list", False):
        from analysis.figures.compute import (
            list_figure_sets,  # lazy: matplotlib and every study, after the checks
        )

        list_figure_sets(args.results)
        return 0
    if getattr(args, "write_notebooks", False):
        from analysis.figures.notebook_gen import (
            write_notebooks,  # lazy: matplotlib and every study, after the checks
        )

        for p in write_notebooks():
            print(f"wrote {p}")
        return 0
    return draw(args)
