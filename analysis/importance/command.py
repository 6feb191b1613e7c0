"""``litelvlm importance``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to compute. From code: ``from
analysis.importance import ImportanceArgs, run``; ``run(ImportanceArgs(refer_dir=..., out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import check_image_resize_option, check_same_out, study_run, with_quiet
from analysis.importance.options import ARGS, ImportanceArgs, check_args, check_method_signals
from analysis.importance.options import add_arguments as study_arguments
from litelvlm.cli_args import split_list
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(ImportanceArgs, Lazy("analysis.importance.compute", "run_and_report"),
                check_args, check_image_resize_option, check_same_out,
                lambda a: check_method_signals(split_list(a.method_signals)))
