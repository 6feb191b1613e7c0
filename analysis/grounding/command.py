"""``litelvlm eval-grounding``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.grounding import GroundingArgs, run``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from analysis.common.study import as_args, check_early
from analysis.grounding.options import ARGS, GroundingArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: GroundingArgs | argparse.Namespace, pipe=None) -> int:
    """Evaluate, resume, shard (accelerate) and merge: check the options, then import torch and run.
    From code: ``run(GroundingArgs(refer_dir=..., out=...))``; the command line passes its namespace;
    ``pipe``: a pipeline already loaded (a figure family's smoke run reuses its own), else loaded from the options."""
    a = as_args(GroundingArgs, args)
    checked = check_args(a)   # the one check of the options
    check_early(a.out, asdict(a))   # another configuration: refused before anything loads
    from analysis.grounding.compute import run_grounding  # lazy: torch, after the checks

    return run_grounding(a, pipe=pipe, checked=checked)
