"""``litelvlm validate``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to validate (resumable), then write the table
and report. From code: ``from analysis.validate import ValidateArgs, run``; ``run(ValidateArgs(refer_dir=...,
out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import check_image_resize_option, check_same_out, study_run
from analysis.validate.options import ARGS, ValidateArgs, add_arguments, check_compare_to, check_inputs
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(ValidateArgs, Lazy("analysis.validate.compute", "run_validate"),
                check_inputs, check_image_resize_option, check_same_out, check_compare_to)
