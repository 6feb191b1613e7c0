"""``litelvlm positions``: its options (:class:`PositionsArgs`) and their checks.

The position switch on the sample image (this project's study, after the GAP paper's argument, arXiv
2506.21873, and FocusUI's PosPad): every method at every budget under each rule of ``--positions``
(:data:`analysis.common.options.model_args.POSITION_RULES`) it can run: its kept tokens at their original RoPE
positions (``keep``), renumbered (``renumber``) and with one marker per run of dropped tokens (``pad``), and
what that does to the [SEG] states and the masks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.positions.command.run` imports
:mod:`analysis.positions.compute` after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.options.defaults import POSITIONS_BUDGETS
from analysis.common.options.model_args import ModelDataArgs
from analysis.common.presentation.family_text import official_protocol_families
from litelvlm.budget import Budget
from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, arg, split_list
from litelvlm.methods import TABLE, describe
from litelvlm.refer_layout import check_refer_folder
from litelvlm.registry.families import check_budgets_fit, check_hub_model, check_image_model
from litelvlm.shared_options import (
    DTYPES,
    budgets_option,
    device_option,
    dtype_option,
    methods_option,
    seed_option,
)


@dataclass
class PositionsArgs(MethodFlags, ModelDataArgs):
    """Options of ``litelvlm positions``."""

    methods: list[str] = methods_option([], help="methods (default: every registered method but the baseline "
                                        "and the analysis oracles)")
    budgets: list[Budget] = budgets_option(POSITIONS_BUDGETS, help="visual-token budgets K (K >= 1; at most "
                                           "the image's N)")
    image_id: int | None = arg(None, help="the image (default: the split's first image id)")
    max_sentences: int = arg(3, help="sentences sampled for the image under an official multi-expression "
                                     f"protocol ({official_protocol_families()}: 3)", minimum=1)
    seed: int = seed_option("seed of the official sampling and the random selector")
    device: str = device_option()
    dtype: str = dtype_option("auto", help="model dtype; auto: bfloat16 for a checkpoint, float32 for "
                              "tiny-random", choices=["auto", *DTYPES])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``positions`` options (one per :class:`PositionsArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, PositionsArgs)


def check_args(a: PositionsArgs) -> tuple[list[str], list[Budget]]:
    """(methods as given, budgets); an unknown method or a bad budget is refused before torch loads."""
    methods = split_list(a.methods)
    check_image_model(a.model, "positions")   # a video family's model: before anything loads
    for m in methods:
        if m not in TABLE:
            describe(m)  # the registry's error: the closest names, the known ones
    check_budgets_fit(a.model, a.budgets)   # against the card's N, before anything loads
    check_hub_model(a.model)   # a hub id offline with no cached snapshot
    check_refer_folder(a.refer_dir, a.dataset, a.split_by)
    return methods, a.budgets


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = PositionsArgs
