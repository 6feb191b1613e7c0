"""``litelvlm positions``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to compute. From code: ``from analysis.positions
import PositionsArgs, run``; ``run(PositionsArgs(refer_dir=..., out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import check_image_resize_option, check_same_out, study_run, with_quiet
from analysis.positions.options import ARGS, PositionsArgs, check_args
from analysis.positions.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(PositionsArgs, Lazy("analysis.positions.compute", "run_positions"),
                check_args, check_image_resize_option, check_same_out, hands_down=check_args)
