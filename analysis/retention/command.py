"""``litelvlm retention``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to compute. From code: ``from analysis.retention
import RetentionArgs, run``; ``run(RetentionArgs(out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run, with_quiet
from analysis.retention.options import ARGS, RetentionArgs, check_args
from analysis.retention.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(RetentionArgs, Lazy("analysis.retention.compute", "run_and_report"),
                check_args)
