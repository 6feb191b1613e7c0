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


#: study subcommand -> its figure family (None: it draws its own); the module is the subcommand's
#: entry in ``analysis.commands.COMMANDS``
STUDIES: dict[str, str | None] = {
    "reversal": "reversal",
    "sink": "sink",
    "retention": "retention",
    "eval-grounding": "grounding",
    "importance": "importance",
    "efficiency": "efficiency",
    "validate": None,
    "demo": None,
}
