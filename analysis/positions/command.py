"""``litelvlm positions``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.positions import PositionsArgs, run``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from analysis.common.study import as_args, check_early
from analysis.positions.options import ARGS, PositionsArgs, add_arguments, check_args
from litelvlm.families import check_image_resize

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: PositionsArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(PositionsArgs(refer_dir=..., out=...))``; the command line passes its parsed namespace."""
    a = as_args(PositionsArgs, args)
    checked = check_args(a)   # the one check of the options
    check_image_resize(a.image_resize, a.model)   # before anything loads
    check_early(a.out, asdict(a))   # another configuration: refused before anything loads
    from analysis.positions.compute import run_positions  # lazy: torch, after the checks

    return run_positions(a, checked=checked)
