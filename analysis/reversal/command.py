"""``litelvlm reversal``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy module of the chosen path imported (a video, the LLM's space, or
CLIP's). From code: ``from analysis.reversal import ReversalArgs, run``; ``run(ReversalArgs(out=...,
model=...))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run, with_quiet
from analysis.reversal.options import ARGS, ReversalArgs, check_args
from analysis.reversal.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)


def _path(a: ReversalArgs) -> Lazy:
    """The heavy function of the options' path."""
    if a.video or a.video_dir:
        return Lazy("analysis.reversal.video", "run_video_reversal")
    if a.space == "llm":
        return Lazy("analysis.reversal.llm_space", "run_llm_space")
    return Lazy("analysis.reversal.compute", "run_reversal")


run = study_run(ReversalArgs, _path, check_args)
