"""``litelvlm retention``, the command layer (:func:`analysis.common.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to compute.
From code: ``from analysis.retention import RetentionArgs, run``; ``run(RetentionArgs(out=...))``."""

from __future__ import annotations

from analysis.common.command import study_run
from analysis.retention.options import ARGS, RetentionArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(RetentionArgs, "analysis.retention.compute:run_and_report",
                check_args)
