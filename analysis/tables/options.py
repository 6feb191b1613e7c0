"""``litelvlm tables``: its options (:class:`TablesArgs`) and their checks.

Light (no pandas, no study module): a bad option is refused at once; :mod:`analysis.tables.command` imports
:mod:`analysis.tables.compute` (the reading and writing) after the checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from litelvlm.cli_args import add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.shared_options import out_option

#: where ``litelvlm tables`` writes without ``--out``: a new folder of the working directory
DEFAULT_TABLES_OUT = "litelvlm-tables"


@dataclass
class TablesArgs:
    results: str = arg(help="results tree: every run folder of eval-grounding, efficiency, validate and "
                            "eval-video under it (at any depth, as `litelvlm figures --results` finds them)")
    out: str = out_option("folder for the tables, each as Markdown (.md), LaTeX (.tex, booktabs) and CSV "
                          "(.csv)", DEFAULT_TABLES_OUT)


def add_arguments(parser) -> None:
    """The options of ``litelvlm tables``."""
    add_dataclass_arguments(parser, TablesArgs)


def check_args(a: TablesArgs) -> None:
    """Raise naming the first invalid option, before anything is imported or written: ``--results`` must be a
    folder, and ``--out`` neither it nor a folder above it (the tables would land in the tree they read)."""
    if a.results is None:
        raise LiteLVLMError("give --results DIR, a results tree (one command's --out, or a folder of them)")
    if not Path(a.results).is_dir():
        raise LiteLVLMError(f"--results {a.results!r} is not a folder")
    results, out = Path(os.path.abspath(a.results)), Path(os.path.abspath(a.out))
    if out == results or out in results.parents:
        raise LiteLVLMError(f"--out {a.out!r} holds the results tree {a.results!r}; give a folder outside it")
