"""``litelvlm plan``, the command layer: check the options (``options``, light), then import the heavy modules and
run. From code: ``from analysis.plan import PlanArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.plan.options import ARGS, PlanArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: PlanArgs | argparse.Namespace) -> int:
    """Plan the paper's tables: check the options, then find the data, calibrate and write the plan. From code:
    ``run(PlanArgs(data_dirs=[...], out=...))``; the command line passes its parsed namespace."""
    a = as_args(PlanArgs, args)
    check_args(a)
    from analysis.plan.compute import run_plan  # lazy: the calibration's torch, after the checks

    return run_plan(a)
