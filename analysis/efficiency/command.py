"""``litelvlm efficiency``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.efficiency import EfficiencyArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.efficiency.options import ARGS, EfficiencyArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: EfficiencyArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and measure. From code:
    ``run(EfficiencyArgs(out=..., flops_only=True))``; the command line passes its parsed namespace."""
    a = as_args(EfficiencyArgs, args)
    check_args(a)
    from analysis.efficiency.compute import run_efficiency  # lazy: torch, after the checks

    return run_efficiency(a)
