"""``litelvlm plan``, the command layer (:func:`analysis.common.runs.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to find the data, calibrate and write the plan.
From code: ``from analysis.plan import PlanArgs, run``; ``run(PlanArgs(data_dirs=[...], out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run
from analysis.plan.options import ARGS, PlanArgs, add_arguments, check_args
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(PlanArgs, Lazy("analysis.plan.compute", "run_plan"),
                check_args)
