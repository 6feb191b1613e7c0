"""``litelvlm figures``, the command layer: check the options (``options``, light), then import the drawing
(``compute``: matplotlib and every study's figure family) and run."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.figures.options import FiguresArgs, add_arguments, check_args

__all__ = ["add_arguments", "run"]


def run(args: FiguresArgs | argparse.Namespace) -> int:
    """``litelvlm figures``: list the families, regenerate the notebooks, or draw the selected families."""
    if getattr(args, "list", False):
        from analysis.figures.compute import (
            list_families,  # lazy: matplotlib and every study, after the checks
        )

        list_families(args.results)
        return 0
    if getattr(args, "write_notebooks", False):
        from analysis.figures.notebook_gen import (
            write_notebooks,  # lazy: matplotlib and every study, after the checks
        )

        for p in write_notebooks():
            print(f"wrote {p}")
        return 0
    a = as_args(FiguresArgs, args)
    check_args(a)
    from analysis.figures.compute import run_figures  # lazy: matplotlib and every study, after the checks

    return run_figures(a)
