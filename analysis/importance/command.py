"""``litelvlm importance``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.importance import ImportanceArgs, run``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from analysis.common.study import as_args, check_early
from analysis.importance.options import ARGS, ImportanceArgs, add_arguments, check_args, check_method_signals
from litelvlm.cli_args import split_list
from litelvlm.families import check_image_resize

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: ImportanceArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(ImportanceArgs(refer_dir=..., out=...))``; the command line passes its parsed namespace."""
    a = as_args(ImportanceArgs, args)
    check_args(a)
    check_image_resize(a.image_resize, a.model)   # before anything loads
    check_early(a.out, asdict(a))   # another configuration: refused before anything loads
    check_method_signals(split_list(a.method_signals))
    from analysis.importance.compute import run_and_report  # lazy: torch, after the checks

    return run_and_report(a)
