"""``litelvlm sink``, the command layer (:func:`analysis.common.runs.command.study_run`): the options checked
(``options``, light), then the heavy modules imported to compute.
From code: ``from analysis.sink import SinkArgs, run``; ``run(SinkArgs(out=..., refer_dir=...))``."""

from __future__ import annotations

from analysis.common.runs.command import study_run, with_quiet
from analysis.sink.options import ARGS, SinkArgs, check_args
from analysis.sink.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(SinkArgs, Lazy("analysis.sink.compute", "run_sink"),
                check_args)
