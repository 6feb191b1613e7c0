"""``litelvlm validate``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.validate import ValidateArgs, run``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from analysis.common.study import as_args, check_early
from analysis.validate.options import ARGS, ValidateArgs, add_arguments, check_compare_to, check_inputs
from litelvlm.families import check_image_resize

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: ValidateArgs | argparse.Namespace) -> int:
    """Validate (resumable) and write the table and report; torch is imported after parsing. From code:
    ``run(ValidateArgs(refer_dir=..., out=...))``; the command line passes its parsed namespace."""
    a = check_inputs(as_args(ValidateArgs, args))
    check_image_resize(a.image_resize, a.model)   # before anything loads
    check_early(a.out, asdict(a))   # another configuration: refused before anything loads
    check_compare_to(a)
    from analysis.validate.compute import run_validate  # lazy: torch, after the checks

    return run_validate(a)
