"""``litelvlm toy-train``: the command line's entry (options from :mod:`litelvlm.toy.options`, checked before
torch is imported; then :mod:`litelvlm.toy.train` trains).

This module is what the command line imports to build the parser: it is light (no torch), so a bad option is
refused at once.
"""

from __future__ import annotations

from ..cli_args import add_dataclass_arguments, from_namespace
from .options import ToyTrainArgs, check_args


def add_arguments(parser) -> None:
    """Add the ``toy-train`` options (one per field of :class:`~litelvlm.toy.options.ToyTrainArgs`)."""
    add_dataclass_arguments(parser, ToyTrainArgs)


def run(ns) -> int:
    """Entry point of ``litelvlm toy-train``: check the options, then import torch and train."""
    check_args(from_namespace(ToyTrainArgs, ns))
    from .train import run as train_run

    return train_run(ns)
