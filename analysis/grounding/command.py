"""``litelvlm eval-grounding``, the command layer (:func:`analysis.common.runs.command.study_run`): the
options checked (``options``, light), then the heavy modules imported to evaluate, resume, shard (accelerate)
and merge; ``run(args, pipe=...)`` reuses a pipeline already loaded (a figure set's smoke run), else loads it
from the options. From code: ``from analysis.grounding import GroundingArgs, run``;
``run(GroundingArgs(refer_dir=..., out=...))``."""

from __future__ import annotations

from analysis.common.runs.command import check_same_out, study_run, with_quiet
from analysis.grounding.options import ARGS, GroundingArgs, check_args
from analysis.grounding.options import add_arguments as study_arguments
from litelvlm.lazy import Lazy

__all__ = ["ARGS", "add_arguments", "run"]

#: the study's options and ``--quiet`` (no headline)
add_arguments = with_quiet(study_arguments)

run = study_run(GroundingArgs, Lazy("analysis.grounding.compute", "run_grounding"),
                check_args, check_same_out, hands_down=check_args)
