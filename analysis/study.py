"""The anatomy every study shares, as a protocol its module satisfies (checked by the tests).

A study module (``analysis/<study>.py``) defines:

* ``ARGS``: its options dataclass (fields made with ``litelvlm.cli_args.arg``; one per command-line
  option, the same name meaning the same thing in every study);
* ``add_arguments(parser)`` and ``run(args) -> int``: the ``litelvlm`` subcommand;
* its results on disk: tables written atomically, ``config.json`` with its options, and, where it
  resumes, finished parts in the one format of :mod:`analysis.parts`;
* its figures: one family in ``analysis/families/<name>.py`` whose ``read`` loads the results and
  whose ``draw`` plots them.
"""

from __future__ import annotations

import argparse
from typing import Protocol, runtime_checkable


@runtime_checkable
class Study(Protocol):
    """What ``analysis/<study>.py`` provides."""

    ARGS: type

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


#: subcommand -> (study module, figure family or None)
STUDIES: dict[str, tuple[str, str | None]] = {
    "reversal": ("analysis.reversal", "reversal"),
    "sink": ("analysis.attention_sink", "sink"),
    "retention": ("analysis.retention", "retention"),
    "eval-grounding": ("analysis.grounding", "grounding"),
    "importance": ("analysis.importance", "importance"),
    "efficiency": ("analysis.efficiency", "efficiency"),
    "demo": ("analysis.demo", None),
}
