"""``litelvlm importance``: its options (:class:`ImportanceArgs`), the signal names and their checks.

Light (no torch, no captum): a bad option is refused at once; :func:`analysis.importance.command.run` imports
the study (:mod:`analysis.importance.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.options.model_args import ModelDataArgs
from litelvlm.cli_args import add_dataclass_arguments, arg, split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import TABLE, describe, get_method, ranking_methods
from litelvlm.refer_layout import check_refer_folder
from litelvlm.registry.families import check_hub_model, check_image_model
from litelvlm.shared_options import (
    DTYPES,
    device_option,
    dtype_option,
    limit_images_option,
    n_boot_option,
    seed_option,
)
from litelvlm.switches import SALIENCY_TARGETS

CLIP_SIGNALS = ("clip_rev_sim", "clip_context", "clip_topsim")
GRADIENT_SIGNALS = ("saliency", "input_x_gradient", "integrated_gradients", "layer_integrated_gradients")
LLM_SIGNALS = ("attention", *GRADIENT_SIGNALS, "ablation")

#: The default LLM-side signals: all but layer_integrated_gradients (a second IG, opt-in), so that
#: the default run stays fast on the tiny model. ``--signals all`` adds it.
DEFAULT_SIGNALS = [s for s in LLM_SIGNALS if s != "layer_integrated_gradients"]

@dataclass
class ImportanceArgs(ModelDataArgs):
    """Options of ``litelvlm importance``."""

    limit_images: int | None = limit_images_option("only the first N images (sorted by image id)")
    max_sentences: int | None = arg(None, help="at most this many sentences per image (default: all)",
                                    minimum=1)
    signals: list[str] = arg(DEFAULT_SIGNALS, help=f"LLM-side signals, comma or space separated "
                                                   f"({', '.join(LLM_SIGNALS)}; or all)", nonempty=True)
    method_signals: list[str] = arg([], help="also compare these methods' per-token ranking scores with the "
                                             "LLM signals, as CLIP-side signals method:NAME (methods that "
                                             "keep tokens by one score per token, e.g. vispruner, fastv, "
                                             "dart)")
    target: str = arg("mask", help="gradient target: mask logits inside the predicted mask, or the [SEG] "
                                   "prompt-embedding norm", choices=list(SALIENCY_TARGETS))
    ig_steps: int = arg(16, help="integration steps of (Layer)IntegratedGradients", minimum=1)
    internal_batch_size: int = arg(4, help="IG steps evaluated at once (bounds memory)", minimum=1)
    group: int = arg(4, help="ablation: remove group x group spatial token blocks", minimum=1)
    per_head: bool = arg(True, help="also compare every attention head (not only the head mean)")
    save_scores: int = arg(8, help="keep the head-mean score vectors of the first N sentences (heat maps)")
    n_boot: int = n_boot_option("bootstrap resamples (over images) for summary.csv")
    seed: int = seed_option("seed (bootstrap; torch)")
    device: str = device_option()
    dtype: str = dtype_option("float32", help="model dtype", choices=DTYPES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``importance`` options (one per :class:`ImportanceArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, ImportanceArgs)


def check_args(a: ImportanceArgs) -> list[str]:
    """The LLM-side signals to compute; a bad option is a :class:`~litelvlm.errors.LiteLVLMError` naming
    it."""
    check_image_model(a.model, "importance")   # a video family's model: before anything loads
    signals = split_list(a.signals)
    if signals == ["all"]:
        signals = list(LLM_SIGNALS)
    bad = [s for s in signals if s not in LLM_SIGNALS]
    if bad:
        raise LiteLVLMError(f"--signals: unknown {', '.join(bad)}; choose from {', '.join(LLM_SIGNALS)}")
    for m in split_list(a.method_signals):
        if m not in TABLE:
            describe(m)  # the registry's error: the closest names, the known ones
    check_refer_folder(a.refer_dir, a.dataset, a.split_by)   # before anything loads
    check_hub_model(a.model)   # a hub id offline with no cached snapshot
    return signals


def check_method_signals(names: list[str]) -> None:
    """Refuse a ``--method-signals`` method that keeps tokens by no one score per token (``Method.ranks``:
    ToMe's merges, DivPrune's greedy diversity, SparseVLM's staged raters); imports the methods' modules."""
    bad = [m for m in names if not get_method(m).ranks]
    if bad:
        raise LiteLVLMError(f"--method-signals: {', '.join(bad)} rank by no per-token score; "
                            f"choose from {', '.join(ranking_methods())}")


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = ImportanceArgs
