"""``litelvlm demo``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.demo import DemoArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.demo.options import ARGS, DemoArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: DemoArgs | argparse.Namespace) -> int:
    """Run the demo: check the options, then import torch and run both studies on the toy CLIP. From
    code: ``run(DemoArgs(out=...))``; the command line passes its parsed namespace."""
    a = check_args(as_args(DemoArgs, args))
    from analysis.demo.compute import run_demo  # lazy: torch, after the checks

    return run_demo(a)
