"""``litelvlm demo``, the command layer (:func:`analysis.common.runs.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to run the demo: both studies on the toy CLIP.
From code: ``from analysis.demo import DemoArgs, run``; ``run(DemoArgs(out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run
from analysis.demo.options import ARGS, DemoArgs, add_arguments, check_args
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(DemoArgs, Lazy("analysis.demo.compute", "run_demo"),
                check_args)
