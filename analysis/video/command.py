"""``litelvlm eval-video``, the command layer: check the options (``options``, light), then import the
heavy modules and run. From code: ``from analysis.video import VideoArgs, run``."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from analysis.common.study import as_args, check_early
from analysis.video.options import ARGS, VideoArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]


def run(args: VideoArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(VideoArgs(out="results/video"))``; the command line passes its parsed namespace."""
    a = as_args(VideoArgs, args)
    checked = check_args(a)   # the one check of the options
    check_early(a.out, asdict(a))   # another configuration: refused before anything loads
    from analysis.video.compute import run_video  # lazy: torch, after the checks

    return run_video(a, checked=checked)
