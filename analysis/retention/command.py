"""``litelvlm retention``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.retention import RetentionArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.retention.options import ARGS, RetentionArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: RetentionArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(RetentionArgs(out=...))``; the command line passes its parsed namespace."""
    a = as_args(RetentionArgs, args)
    check_args(a)
    from analysis.retention.compute import run_and_report  # lazy: torch, after the checks

    return run_and_report(a)
