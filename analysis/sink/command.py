"""``litelvlm sink``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.sink import SinkArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.sink.options import ARGS, SinkArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: SinkArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(SinkArgs(out=..., refer_dir=...))``; the command line passes its parsed namespace."""
    a = as_args(SinkArgs, args)
    check_args(a)
    from analysis.sink.compute import run_sink  # lazy: torch, after the checks

    return run_sink(a)
