"""``litelvlm plan``: its options (:class:`PlanArgs`) and their checks.

Light (no torch, no pandas): a missing data folder, an unknown model or method, two models of one family are
refused at once, before anything is written; :func:`analysis.plan.command.run` imports
:mod:`analysis.plan.compute` after the checks.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from analysis.common.options.defaults import PAPER_PRUNED_BUDGETS, VIDEO_BUDGETS
from litelvlm.budget import Budget
from litelvlm.cli_args import add_dataclass_arguments, arg, read_declared, split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import BASELINE, PAPER_COMPARISON, TABLE, describe, is_baseline
from litelvlm.registry.families import DEFAULT_MODEL, card_of
from litelvlm.shared_options import (
    DTYPES,
    budgets_option,
    device_option,
    dtype_option,
    limit_images_option,
    methods_option,
    out_option,
    seed_option,
)

#: The paper's comparison (:data:`litelvlm.methods.PAPER_COMPARISON`: LiteLVLM and 8 published pruning
#: methods) at each pruned budget, with the unpruned model once; ``--methods`` changes the list.
PAPER_METHODS = PAPER_COMPARISON


@dataclass
class PlanArgs:
    """Options of ``litelvlm plan``."""

    out: str = out_option("plan folder: plan.json (every run, its estimate, its command) and plan.md",
                          "runs/plan")
    data_dirs: list[str] = arg(help="folders holding the data, comma or space separated, each searched two "
                                    "levels deep for the layouts: REFER (refs(unc).p / refs(umd).p beside "
                                    "instances.json, images/ or --coco-images), Ref-DAVIS-17, "
                                    "Refer-YouTube-VOS, MeViS",
                               required=True, nonempty=True)
    models: list[str] = arg([DEFAULT_MODEL], help="the checkpoints (or random presets), one per family, "
                            "comma or space separated", nonempty=True)
    clip: str | None = arg(None, help="the CLIP folder passed to every command (default: each command's)")
    coco_images: str | None = arg(None, help="COCO train2014 image folder of the REFER layouts (default: "
                                             "each layout's own images/ folder)")
    tree: str = arg("runs/results", help="the results tree the printed commands write into, one folder per "
                                         "run (<family>/<dataset>_<split>); `litelvlm figures --results "
                                         "TREE` draws it")
    methods: list[str] = methods_option(list(PAPER_METHODS), help="methods of every table (default: the "
                                        "paper's comparison, this project's reading of which 9); the "
                                        "unpruned baseline is always run")
    budgets: list[Budget] = budgets_option(PAPER_PRUNED_BUDGETS, help="image budgets K of every method")
    video_budgets: list[Budget] = budgets_option(VIDEO_BUDGETS, help="per-frame budgets of the "
                                                 "video tables (of each frame's 576 CLIP tokens)")
    gpus: int = arg(1, help="processes per command (the GPUs of the node), torch.distributed.run's "
                    "--nproc-per-node", minimum=1)
    calibrate: int = arg(2, help="images timed per model, method and budget on this machine (after one "
                                 "untimed warm-up) to estimate every run's time; 0: the run list and "
                                 "commands only",
                         minimum=0)
    repeats: int = arg(3, help="times each method and budget is run on each calibration image; the estimate "
                       "is their median (made non-decreasing in the budget)", minimum=1)
    threads: int | None = arg(None, help="torch CPU threads of the calibration (default: 1 for tiny/toy "
                              "models, else the physical cores)", minimum=1)
    device: str = device_option("torch device of the calibration and of the printed commands")
    dtype: str = dtype_option("auto", help="model dtype of the calibration and of the printed commands",
                              choices=["auto", *DTYPES])
    limit_images: int | None = limit_images_option("append --limit-images N to every printed image command "
                                                   "(only the first N images; a short trial of the plan)",
                                                   deprecated=())
    seed: int = seed_option("seed of the calibration and of the printed commands")

    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's budgets; the command line's are read already


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``plan`` options (one per :class:`PlanArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, PlanArgs)


def check_args(a: PlanArgs) -> tuple[list[str], list[str], list[str]]:
    """(data folders, models, methods with the baseline first); a missing folder, a model that names no
    family, two models of one family, an unknown method or an empty list is a :class:`LiteLVLMError` naming
    it."""
    dirs = split_list(a.data_dirs)
    for d in dirs:
        if not os.path.isdir(d):
            raise LiteLVLMError(f"--data-dirs {d!r} is not a folder")
    if a.coco_images is not None and not os.path.isdir(a.coco_images):
        raise LiteLVLMError(f"--coco-images {a.coco_images!r} is not a folder")
    models = split_list(a.models)
    families: dict[str, str] = {}
    for m in models:
        family = card_of(m).name   # names the model when it is no family's
        if family in families:
            raise LiteLVLMError(f"--models: {families[family]!r} and {m!r} are both {family} models; the "
                                "results tree holds one model per family (plan them one at a time)")
        families[family] = m
    methods = split_list(a.methods)
    for m in methods:
        if m not in TABLE:
            describe(m)   # the registry's error: the closest names
    if not [m for m in methods if not is_baseline(m)]:
        raise LiteLVLMError("--methods needs at least one pruning method")
    return dirs, models, [BASELINE, *dict.fromkeys(m for m in methods if not is_baseline(m))]


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = PlanArgs
