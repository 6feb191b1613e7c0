"""``litelvlm efficiency``, the command layer (:func:`analysis.common.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to measure.
From code: ``from analysis.efficiency import EfficiencyArgs, run``; ``run(EfficiencyArgs(out=...,
flops_only=True))``."""

from __future__ import annotations

from analysis.common.command import study_run
from analysis.efficiency.options import ARGS, EfficiencyArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(EfficiencyArgs, "analysis.efficiency.compute:run_efficiency",
                check_args)
