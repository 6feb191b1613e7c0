"""``litelvlm tables``, the command layer: the options checked (``options``, light), then the reading and
writing imported (``compute``: pandas) by :func:`analysis.common.runs.command.study_run`."""

from __future__ import annotations

from analysis.common.runs.command import study_run
from analysis.tables.options import TablesArgs, add_arguments, check_args
from litelvlm.lazy import Lazy

ARGS = TablesArgs

__all__ = ["ARGS", "add_arguments", "run"]

#: the tables of a results tree from the options (``run(TablesArgs(results=..., out=...))``)
run = study_run(TablesArgs, Lazy("analysis.tables.compute", "run_tables"), check_args)
