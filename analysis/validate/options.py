"""``litelvlm validate``: its options (:class:`ValidateArgs`) and their checks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.validate.command.run` imports
the validation (:mod:`analysis.validate.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

from analysis.common.options.defaults import PAPER_BUDGETS, PAPER_VIDEO_BUDGETS
from analysis.common.options.model_args import LAYER_DTYPE_HELP, LAYER_DTYPES, ModelDataArgs, positions_arg
from analysis.common.options.prefill_args import (
    CAPTURE_CHOICES,
    CAPTURE_HELP,
    ENCODER_CHOICES,
    ENCODERS_HELP,
    PREFILL_HELP,
    PREFILLS,
    STAGE_COSTS_HELP,
    TFLOPS_HELP,
    check_prefill,
    resolve_prefill,
)
from litelvlm.budget import Budget
from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.refer_layout import check_refer_folder
from litelvlm.registry.families import card_of, check_budgets_fit, check_hub_model, family_input
from litelvlm.shared_options import (
    DTYPES,
    budgets_option,
    device_option,
    dtype_option,
    methods_option,
    seed_option,
)
from litelvlm.switches import ARRANGEMENTS


@dataclass
class ValidateArgs(MethodFlags, ModelDataArgs):
    """Options of ``litelvlm validate``."""

    refer_dir: str | None = arg(None, help="REFER folder (refs(<split-by>).p, instances.json), e.g. "
                                           "../shared/data/coco128_refer: an image model's image (required "
                                           "there)")
    video_dir: str | None = arg(None, help="a video model: Ref-DAVIS-17-layout folder whose first video (its "
                                           "first clip of at most 64 frames) and that video's first "
                                           "expression are validated; default: the project's synthetic set, "
                                           "written to a temporary folder")
    arrangement: str | None = arg(None, choices=list(ARRANGEMENTS), help="a video model: how a "
                                  "frame's K kept CLIP tokens meet the square-only pooling: pool (default, "
                                  "the official pooling: 144 LLM tokens a frame whatever K), pool-min "
                                  "(min(sqrt K, 12)^2) or direct (K), both this project's readings "
                                  "(docs/video.md); refused for an image model")
    tokenizer: str | None = arg(None, help="a random full-size model whose checkpoint ships a tokenizer: "
                                           "that slow tokenizer's folder (docs/validate.md)")
    methods: list[str] = methods_option([], help="methods (default: every registered method the model's "
                                        "family runs; one it cannot run is refused)")
    budgets: list[Budget] | None = budgets_option(None, help="visual-token budgets K (default: "
                                                  "576,192,128,64; a K above the image's N is skipped when N "
                                                  "depends on the image); a video model: per-frame budgets "
                                                  "of each frame's 576 CLIP patches (default: 576,196,81)")
    image_id: int | None = arg(None, help="the image (default: the split's first image id)")
    max_sentences: int = arg(3, help="sentences sampled for the image by a family's official multi-sentence "
                                     "protocol; a family whose protocol holds a fixed number of expressions "
                                     "per prompt takes that many",
                             minimum=1)
    seed: int = seed_option("seed of the official sampling and the random selector")
    device: str = device_option("torch device (cuda: the GPU validation, CUDA-synchronised times)")
    dtype: str = dtype_option("auto", help="model dtype; auto: the family's official evaluation dtype "
                              "(bfloat16 for a checkpoint or a full-size random model), float32 for a tiny "
                              "one", choices=["auto", *DTYPES])
    compile: bool = arg(False, help="compile each LLM decoder layer (torch.compile, without CUDA graphs: "
                                    "per-layer graphs overwrite each other's outputs; --prefill captured "
                                    "graphs the whole stack); every (method, budget) gets 2 untimed warm-up "
                                    "calls first (this project's option; equal to the eager path, "
                                    "tests/litelvlm/llm/test_compiled_prefill.py)")
    prefill: str = arg("auto", choices=list(PREFILLS), help=PREFILL_HELP + " (docs/validate.md)")
    capture: str = arg("auto", choices=list(CAPTURE_CHOICES), help=CAPTURE_HELP)
    encoders: str = arg("auto", choices=list(ENCODER_CHOICES), help=ENCODERS_HELP)
    matmul_tflops: str = arg("auto", help=TFLOPS_HELP)
    stage_costs: bool = arg(False, help=STAGE_COSTS_HELP)
    layer_dtype: str = arg("auto", help=LAYER_DTYPE_HELP + "; auto by default here (a timing study)",
                           choices=list(LAYER_DTYPES))
    positions: str = positions_arg()
    repeats: int = arg(1, help="calls per (method, budget), interleaved round by round; times are their "
                       "median", minimum=1)
    write: bool = arg(True, help="--no-write: a random preset built in memory, no checkpoint folder written "
                                 "(where only timings are wanted: the same weights as the written folder's; "
                                 "the families that offer it: docs/validate.md)")
    figures: bool = arg(True, help="--no-figures: write stages.csv and amdahl.csv without stages.png and "
                                   "amdahl.png (where only the tables are wanted)")
    compare_to: str | None = arg(None, help="another validate folder of the same model, image and seed (e.g. "
                                            "the unquantized run): each run's masks are compared with its "
                                            "unpruned masks (mask_iou_vs_compare, logit_diff_vs_compare); "
                                            "this run's own --out: its own unpruned masks (the agreement of "
                                            "pruning alone)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` options (one per :class:`ValidateArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, ValidateArgs)


def check_compare_to(a: ValidateArgs) -> None:
    """Refuse a ``--compare-to`` folder without a validate reference (unless it is this run's own ``--out``),
    before anything is loaded or written."""
    if a.compare_to is None or Path(a.compare_to).resolve() == Path(a.out).resolve():
        return
    if not (Path(a.compare_to) / "reference.safetensors").is_file():
        raise LiteLVLMError(f"--compare-to {a.compare_to}: no reference.safetensors there (not a validate "
                            "folder, or its run did not start)")


def check_no_write(no_write: bool, model: str) -> None:
    """Refuse ``--no-write`` for a model that is no random preset, or whose family builds none in memory."""
    if not no_write:
        return
    card = card_of(model)
    if card.preset(model) is None:
        raise LiteLVLMError(f"--no-write: {model} is no random preset (a checkpoint folder is read, never "
                            "written)")
    if not card.builds_in_memory:
        raise LiteLVLMError(f"--no-write: the {card.name} family does not build its random presets in memory "
                            "yet (run without --no-write: the folder is written once to the cache)")


def check_inputs(a: ValidateArgs) -> ValidateArgs:
    """The input the model's family reads: ``--refer-dir`` (an image model, required) or ``--video-dir`` (a
    video model, optional); the family's default budgets. Refused before anything is loaded."""
    video = family_input(a.model) == "video"
    if video and a.refer_dir is not None:
        raise LiteLVLMError(f"--refer-dir: {a.model} is a video model; give a Ref-DAVIS-layout --video-dir "
                            "(or none: the synthetic set)")
    if not video and a.arrangement is not None:
        raise LiteLVLMError(f"--arrangement: {a.model} is an image model; the arrangement is a video "
                            "model's (how a frame's kept CLIP tokens meet its pooling)")
    if not video and a.video_dir is not None:
        raise LiteLVLMError(f"--video-dir: {a.model} is an image model; give --refer-dir")
    if not video and a.refer_dir is None:
        raise LiteLVLMError("the following arguments are required: --refer-dir")
    check_budgets_fit(a.model, a.budgets or [])   # against the card's N, before anything loads
    check_hub_model(a.model)   # a hub id offline with no cached snapshot
    if a.refer_dir is not None:
        check_refer_folder(a.refer_dir, a.dataset, a.split_by)
    a = replace(a, prefill=resolve_prefill(a.prefill, a.device, a.compile))   # auto: captured on cuda
    check_prefill(a.prefill, a.compile, a.matmul_tflops, a.capture, a.device, a.encoders)
    check_no_write(not a.write, a.model)
    # the paper's budgets (576, 192, 128, 64), or its per-frame ones for a video model (576, 196, 81)
    defaults = PAPER_VIDEO_BUDGETS if video else PAPER_BUDGETS
    return a if a.budgets else replace(a, budgets=Budget.parse_list(defaults))


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = ValidateArgs
