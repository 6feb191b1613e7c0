"""``litelvlm eval-video``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to compute. From code: ``from analysis.video
import VideoArgs, run``; ``run(VideoArgs(out="results/video"))``."""

from __future__ import annotations

from analysis.common.runs.command import check_same_out, study_run, with_quiet
from analysis.video.options import ARGS, VideoArgs, check_args
from analysis.video.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(VideoArgs, Lazy("analysis.video.compute", "run_video"),
                check_args, check_same_out, hands_down=check_args)
