"""The library's own subcommands (``select``), and what a subcommand is to the command line: :class:`Command`.

The subcommand tables (:data:`litelvlm.cli.COMMANDS`, the studies' ``analysis.commands.COMMANDS``) map each
name to a :class:`Command`. This module imports nothing heavy.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

from ..lazy import Lazy


class Command(NamedTuple):
    """A subcommand of ``litelvlm``: ``module``, the dotted name of the module that defines
    ``add_arguments(parser)`` and ``run(args) -> int`` (imported only when the subcommand runs: :meth:`load`),
    and its one-line ``help``. ``tests/project/test_typed_wiring.py`` loads every one."""

    module: str
    help: str

    def load(self) -> ModuleType:
        """The subcommand's module, imported now (:meth:`litelvlm.lazy.Lazy.get`)."""
        return Lazy(self.module).get()

    @property
    def package(self) -> str:
        """The top-level package of its module (whose logger the command line sets)."""
        return self.module.split(".")[0]


__all__ = ["Command"]
