"""``litelvlm reversal``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.reversal import ReversalArgs, run``."""

from __future__ import annotations

import argparse

from analysis.common.study import as_args
from analysis.reversal.options import ARGS, ReversalArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: ReversalArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(ReversalArgs(out=..., model=...))``; the command line passes its parsed namespace."""
    a = as_args(ReversalArgs, args)
    check_args(a)
    if a.video or a.video_dir:
        from analysis.reversal.video import run_video_reversal  # lazy: torch, after the checks

        return run_video_reversal(a)
    if a.space == "llm":
        from analysis.reversal.llm_space import run_llm_space  # lazy: torch, after the checks

        return run_llm_space(a)
    from analysis.reversal.compute import run_reversal  # lazy: torch, after the checks

    return run_reversal(a)
