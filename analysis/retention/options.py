"""``litelvlm retention``: its options (:class:`RetentionArgs`) and their checks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.retention.command.run` imports
the study (:mod:`analysis.retention.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from analysis.common.options.clip_args import CLIP_DTYPES
from analysis.common.options.defaults import RETENTION_BUDGETS
from analysis.common.presentation.family_text import paper_family
from analysis.common.runs.study import check_same_model
from litelvlm.budget import Budget
from litelvlm.cli_args import add_dataclass_arguments, arg, read_declared
from litelvlm.errors import LiteLVLMError
from litelvlm.image_resize import image_resize_arg
from litelvlm.models.model_spec import CLIP_MODEL_HELP, COMMAND_CLIP_MODEL, ModelSpec
from litelvlm.registry.families import cards, check_image_model, check_image_resize, family_of
from litelvlm.shared_options import (
    budgets_option,
    clip_backend_option,
    dtype_option,
    limit_images_option,
    methods_option,
    model_option,
    out_option,
    quantize_backend_option,
    quantize_option,
    seed_option,
)

#: The budgets of the paper's animation (LLaVA's 576 tokens down to 32).
BUDGETS = RETENTION_BUDGETS


#: the LVLM models ``--model``'s help names: each family's documented offline model string
_EXAMPLE = " or ".join(c.default_model for c in cards() if c.input == "image")


@dataclass
class RetentionArgs:
    """The options of one ``retention`` run."""

    out: str = out_option("output folder")
    model: ModelSpec = model_option(COMMAND_CLIP_MODEL, help=f"CLIP model ({CLIP_MODEL_HELP}): an hf id or "
                                    "folder, an open_clip string, or a random one such as tiny336-random or "
                                    "vit-l-14-336-random (see `litelvlm select --help`); or an LVLM of a "
                                    f"model family (e.g. {_EXAMPLE}, or a checkpoint folder): the methods it "
                                    "runs, on its own visual tokens")
    backend: str | None = clip_backend_option()
    refer_dir: str = arg(None, help="a REFER-layout folder (refs(unc).p, images/); default: one synthetic "
                         "image", deprecated=("--data",))
    image_dir: str = arg(None, help="image folder (default: <refer-dir>/images)")
    limit_images: int = limit_images_option("only the first N images (val split first, by image id)", 2)
    budgets: list[Budget] = budgets_option(BUDGETS, help="token budgets K >= 1 (a CLIP's: clipped to its "
                                           "number of patches; an LVLM's: planned as eval-grounding plans "
                                           "them)")
    methods: list[str] = methods_option(None, help="methods (default: every CLIP-side method the CLIP "
                                        "backend runs; on an LVLM, every method its family runs but the "
                                        "analysis oracles)")
    seed: int = seed_option("seed for the random method")
    image_resize: str = image_resize_arg()
    dtype: str = dtype_option("float32", help=f"CLIP's dtype ({paper_family().display_name} runs its CLIP in "
                              "bfloat16)", choices=list(CLIP_DTYPES))
    quantize: str = quantize_option("quantize CLIP's encoder layers (vision and text; hf backend): int8 or "
                                    "nf4 (this project's option, to ask whether quantization changes what "
                                    "is kept)")
    quantize_backend: str = quantize_backend_option("library of --quantize")
    compare_to: str = arg(None, help="another retention folder (same images, methods and budgets, e.g. the "
                                     "unquantized run): writes overlap.csv, the share of kept tokens both "
                                     "keep")


    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's budgets; the command line's are read already

def model_family(model: str) -> str | None:
    """The model family ``model`` names (an LVLM: its retention runs on the family's pipeline), or None for a
    CLIP (a random CLIP preset's name, such as ``tiny-random``, stays the CLIP; imports nothing)."""

    try:
        if ModelSpec.of(model).random_clip is not None:
            return None
        return family_of(model)
    except LiteLVLMError:
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``retention`` options (one per :class:`RetentionArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, RetentionArgs)


def check_args(a: RetentionArgs) -> None:
    """Raise a :class:`~litelvlm.errors.LiteLVLMError` naming the first invalid option (before any work)."""
    check_image_model(a.model, "retention")   # a video family's model (a CLIP passes): before anything loads
    if a.image_dir and not a.refer_dir:
        raise LiteLVLMError("--image-dir needs --refer-dir (the synthetic default has no image folder)")
    if a.refer_dir and not (Path(a.refer_dir) / "refs(unc).p").is_file():   # before anything loads
        raise LiteLVLMError(f"--refer-dir {a.refer_dir!r} has no 'refs(unc).p' (REFER layout expected)")
    check_same_model(a.out, a.model, a.backend)
    check_image_resize(a.image_resize, a.model)   # a family with a resize of its own, before anything loads


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = RetentionArgs
