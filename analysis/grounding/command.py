"""``litelvlm eval-grounding``, the command layer (:func:`analysis.common.command.study_run`): the options
checked (``options``, light), then the heavy modules imported to evaluate, resume, shard (accelerate) and
merge; ``run(args, pipe=...)`` reuses a pipeline already loaded (a figure set's smoke run), else loads it from
the options. From code: ``from analysis.grounding import GroundingArgs, run``;
``run(GroundingArgs(refer_dir=..., out=...))``."""

from __future__ import annotations

from analysis.common.command import check_same_out, study_run
from analysis.grounding.options import ARGS, GroundingArgs, add_arguments, check_args

__all__ = ["ARGS", "add_arguments", "run"]

run = study_run(GroundingArgs, "analysis.grounding.compute:run_grounding",
                check_args, check_same_out, hands_down=check_args)
