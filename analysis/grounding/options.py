"""``litelvlm eval-grounding``: its options (:class:`GroundingArgs`) and their checks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.grounding.command.run` imports
the evaluation (:mod:`analysis.grounding.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.options.defaults import GROUNDING_BUDGETS
from analysis.common.options.model_args import ModelDataArgs, positions_arg
from analysis.common.options.prefill_args import PrefillArgs, check_prefill, resolve_prefill
from analysis.common.presentation.family_text import merged_grid_names, official_protocol_families
from litelvlm.budget import Budget
from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, arg, split_list
from litelvlm.refer_layout import check_refer_folder
from litelvlm.registry.families import (
    check_budgets_fit,
    check_hub_model,
    check_image_model,
    check_image_resize,
)
from litelvlm.shared_options import (
    DTYPES,
    boot_seed_option,
    budgets_option,
    device_option,
    dtype_option,
    limit_images_option,
    methods_option,
    n_boot_option,
    seed_option,
)
from litelvlm.switches import ANSWERS, CLIP_CONTEXTS, CLIP_SIMILARITIES, CLIP_TEXTS, MASK_PARTS

PROTOCOLS = ("per-expression", "official")


#: the families of the help texts: with an official multi-expression protocol, and mapping CLIP onto a merged
#: grid
_OFFICIAL, _MERGED = official_protocol_families(), merged_grid_names()


@dataclass
class GroundingArgs(MethodFlags, PrefillArgs, ModelDataArgs):
    """Options of ``litelvlm eval-grounding`` (each method's own options:
    :data:`litelvlm.cli_args.MethodFlags`)."""

    methods: list[str] = methods_option(["none", "litelvlm"], help="methods, comma or space separated "
                                        "(the list: `litelvlm select --list-methods`)")
    budgets: list[Budget] = budgets_option(GROUNDING_BUDGETS, help="visual-token budgets K (K >= 1; the "
                                           "baseline none runs once at all tokens)")
    protocol: str = arg("official", help=f"evaluation protocol: official ({_OFFICIAL}'s, several expressions "
                                         "per prompt; a family with one expression per prompt runs its own) "
                                         "or per-expression (this project's)", choices=list(PROTOCOLS))
    max_sentences: int = arg(3, help=f"official protocol: sentences sampled per image ({_OFFICIAL}: 3)",
                             minimum=1)
    clip_text: str = arg("question", help="what LiteLVLM's CLIP embeds: the formatted question (official) "
                                          "or the bare expression", choices=list(CLIP_TEXTS))
    clip_context: str = arg("clip", help=f"{_MERGED}: where LiteLVLM's context part comes from: the paired "
                                         "CLIP's [CLS] score mapped onto the merged grid, or the attention "
                                         "each merged token receives in Qwen's last vision block (VScan's "
                                         "Qwen score); both this project's "
                                         "adaptations", choices=list(CLIP_CONTEXTS))
    clip_similarity: str = arg("clip", help=f"{_MERGED}: where LiteLVLM's similarity part comes from: the "
                                            "paired CLIP's patch-text similarity mapped onto the merged "
                                            "grid, or the relevance of each merged token to the prompt's "
                                            "instruction in the LLM's input space (cosine with the mean "
                                            "instruction-token embedding, as OpenVINO's CDPruner port "
                                            "scores Qwen tokens); both this project's adaptations, the "
                                            "lowest kept first as LiteLVLM's rule",
                               choices=list(CLIP_SIMILARITIES))
    answer: str = arg("teacher-forced", help="the answer holding [SEG]: teacher-forced in the prompt (the "
                                             f"official evaluation of {_OFFICIAL}; this project's on a "
                                             "family that decodes its answer, whose random weights never "
                                             "generate its [SEG] token) or generate (that family's official "
                                             "greedy decoding; methods pruning at the LLM input only)",
                      choices=list(ANSWERS))
    limit_images: int | None = limit_images_option("only the first N images (sorted by image id)")
    image_ids: list[str] = arg([], help="evaluate only these image ids (comma or space separated; "
                                        "before --limit-images)", each=int)
    seed: int = seed_option("seed for templates, sampling, random selectors and (without --boot-seed) the "
                            "bootstrap")
    n_boot: int = n_boot_option("bootstrap replicates (over images, each image's expressions kept together, "
                                "under both protocols) for the intervals and comparisons.csv (which "
                                "claims.csv reads), and random swap patterns of the paired test beyond 16 "
                                "units")
    boot_seed: int | None = boot_seed_option()
    device: str = device_option("torch device (under accelerate: each process's own device)")
    dtype: str = dtype_option("auto", help=f"model dtype; auto: bfloat16 for a checkpoint (as {_OFFICIAL}'s "
                              "evaluation), float32 for a small random preset", choices=["auto", *DTYPES])
    chunk: int = arg(8, help="images per resumable chunk written under OUT/parts", minimum=1)
    batch_size: int = arg(1, help="prompts per LLM forward (this project's addition): B prompts of one "
                                  "chunk's images, right-padded and masked, each pruned by its own "
                                  "selection; a method pruning inside the LLM, an oracle or a generated "
                                  "answer runs at 1 (said once); raise --chunk to fill batches", minimum=1)
    positions: str = positions_arg()
    gt_parts: str | None = arg(None, help="ground truth of a multi-polygon referent: sum (the official REFER "
                                          "code: overlapping parts count 2 and are scored as the official "
                                          "metric does) or union; default: sum under --protocol official, "
                                          "union under per-expression", choices=list(MASK_PARTS))

    time_pruning: bool = arg(False, help="time each call's pruning step (this project's addition): "
                             "summary.csv's prune_ms, the median ms of a CLIP-side method's selection (the "
                             "stage timer's selection stage; NaN where the selection runs inside the LLM or "
                             "the vision tower, and for batched calls under --batch-size); off by default, "
                             "so that a seeded run's tables stay byte-identical")
    stage_costs: bool = arg(False, help="cost each method's whole call by stage (this project's "
                            "measurement): summary.csv's stage_<stage>_ms (the median ms per call of the "
                            "vision towers with the paired CLIP, the selection, the LLM prefill, the mask "
                            "decoder and the whole call, the input prepared again in each timed call) and "
                            "stage_<stage>_flops / _weight_bytes (one counted call per method and budget, on "
                            "the run's first prompt); a method running the vision tower itself is charged "
                            "its own run in place of the full one; batch size 1 only (absent under "
                            "--batch-size > 1: a batched call's stages are shared by its prompts). Its own "
                            "option beside "
                            "--time-pruning, whose prune_ms stays the paper-style selection time of the "
                            "evaluated call: this one runs each call again (twice for a tower method) and "
                            "counts one more; off by default, so that a seeded run's tables stay "
                            "byte-identical")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval-grounding`` options (one per :class:`GroundingArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, GroundingArgs)


def check_args(a: GroundingArgs) -> tuple[list[str], list[Budget]]:
    """(methods, budgets) as given; a bad option is a :class:`~litelvlm.errors.LiteLVLMError` naming it (what
    an option declares, its budgets' form included, is checked where it is read: by the parser, or by
    :func:`~litelvlm.cli_args.check_declared` for options built in code)."""
    methods = split_list(a.methods)
    check_image_model(a.model, "eval-grounding")   # a video family's model: before anything loads
    check_image_resize(a.image_resize, a.model)
    check_budgets_fit(a.model, a.budgets)   # against the card's N, before anything loads
    check_hub_model(a.model)   # a hub id offline with no cached snapshot
    check_refer_folder(a.refer_dir, a.dataset, a.split_by)
    a.prefill = resolve_prefill(a.prefill, a.device)   # auto: captured on cuda, eager elsewhere
    check_prefill(a.prefill, False, "off", a.capture, a.device, a.encoders)
    return methods, a.budgets


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = GroundingArgs
