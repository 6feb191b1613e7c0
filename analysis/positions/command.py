"""``litelvlm positions``, the command layer (:func:`analysis.common.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to compute.
From code: ``from analysis.positions import PositionsArgs, run``; ``run(PositionsArgs(refer_dir=...,
out=...))``."""

from __future__ import annotations

from analysis.common.command import check_image_resize_option, check_same_out, study_run
from analysis.positions.options import ARGS, PositionsArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(PositionsArgs, "analysis.positions.compute:run_positions",
                check_args, check_image_resize_option, check_same_out, hands_down=check_args)
