"""``litelvlm efficiency``, the command layer (:func:`analysis.common.runs.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to measure. From code: ``from
analysis.efficiency import EfficiencyArgs, run``; ``run(EfficiencyArgs(out=..., flops_only=True))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run, with_quiet
from analysis.efficiency.options import ARGS, EfficiencyArgs, check_args
from analysis.efficiency.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(EfficiencyArgs, Lazy("analysis.efficiency.compute", "run_efficiency"),
                check_args)
