"""``litelvlm eval-video``: its options (:class:`VideoArgs`) and the entry point.

Referring video segmentation with VideoGLaMM on a Ref-DAVIS-layout folder, every pruning method the ``videoglamm``
family runs at every per-frame budget K (of each frame's 576 CLIP tokens): the CLIP-side methods per frame
(``litelvlm.videoglamm.pruning``), the LLM-side ones on the LLM's whole visual sequence at the same kept fraction,
round(3328 K / 576) of its 3328 visual tokens (this project's reading, ``litelvlm.videoglamm.family``), scored by
J, F and J&F (DAVIS 2017, unsupervised task, per annotator set; ``litelvlm.video.metrics``). Without ``--video-dir``
the synthetic moving-shapes set is written to a temporary folder, so the study runs offline with ``--out`` alone.

The paper's video numbers need VideoGLaMM's RVOS fine-tuned weights, which are not public; the default model is
random weights (``videoglamm-tiny-random:0``) and its numbers mean nothing.

Light (no torch, no pandas): a bad option is refused at once; :func:`run` imports
:mod:`analysis.video.compute` after the checks.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from analysis.common.study import as_args
from litelvlm.cli_args import add_dataclass_arguments, arg, split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import BASELINE, TABLE, describe
from litelvlm.model_spec import COMMAND_VIDEOGLAMM_MODEL, VIDEOGLAMM_MODEL_HELP

ARRANGEMENTS = ("pool", "pool-min", "direct")       # litelvlm.videoglamm.pruning.ARRANGEMENTS
CLIP_TEXTS = ("expression", "question")             # litelvlm.videoglamm.pruning.CLIP_TEXTS
NUM_PATCHES = 576


@dataclass
class VideoArgs:
    """Options of ``litelvlm eval-video``."""

    out: str = arg(help="output folder (summary.csv, expressions.parquet, config.json; resumable)", required=True)
    video_dir: str | None = arg(None, help="Ref-DAVIS-17-layout folder (meta_expressions/<split>/..., <split>/JPEGImages, "
                                      "<split>/Annotations); default: the synthetic moving-shapes set, written to "
                                      "a temporary folder")
    split: str = arg("valid", help="split of --video-dir")
    model: str = arg(COMMAND_VIDEOGLAMM_MODEL, help=f"VideoGLaMM ({VIDEOGLAMM_MODEL_HELP}): "
                                                    "videoglamm-tiny-random[:SEED], videoglamm-random[:SEED] or a "
                                                    "checkpoint folder")
    clip: str | None = arg(None, help="CLIP paired with VideoGLaMM's tower for its text side (default: "
                                      "openai/clip-vit-large-patch14-336, or the matching random CLIP for a random "
                                      "VideoGLaMM)")
    methods: list[str] = arg([], help="methods (default: every CLIP-side method, VisPruner first, then every LLM-side "
                                      "method the videoglamm family runs on the model, oracles aside); the unpruned "
                                      "baseline is always run")
    budgets: list[str] = arg(["196", "81"], help="CLIP tokens kept per frame (of 576)", each=int, minimum=1)
    arrangement: str = arg("pool", help="how K kept tokens meet the square-only pooling: pool (to 12x12, the "
                                        "default), pool-min (to min(sqrt K, 12) squared), direct (no pooling)",
                           choices=list(ARRANGEMENTS))
    clip_text: str = arg("expression", help="CLIP text of the text-reading methods: the expression, or "
                                            "VideoGLaMM's question", choices=list(CLIP_TEXTS))
    anno_sets: list[str] = arg(["0", "1", "2", "3"], help="Ref-DAVIS annotator sets scored (0..3)", each=int)
    limit_videos: int | None = arg(None, help="only the first N videos", minimum=1)
    synthetic_videos: int = arg(2, help="videos of the synthetic set (without --video-dir)", minimum=1)
    synthetic_frames: int = arg(8, help="frames per synthetic video", minimum=2)
    synthetic_seed: int = arg(0, help="seed of the synthetic set")
    seed: int = arg(0, help="seed of the random selector (frame f draws with seed + f)")
    device: str = arg("cpu", help="torch device")
    dtype: str = arg("auto", help="model dtype (auto: the checkpoint's)",
                     choices=["auto", "float32", "bfloat16", "float16"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval-video`` options (one per :class:`VideoArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, VideoArgs)


def method_error(name: str) -> str | None:
    """Why ``--methods`` may not name ``name`` (None: it may), read from the registry's table alone; what the family
    cannot run is refused by the family (``VideoGLaMMPipeline.method_error``) before anything is written."""
    if name == BASELINE:
        return f"{name!r} is the unpruned baseline, run on every video anyway"
    return None


def check_args(a: VideoArgs) -> tuple[list[str], list[int], list[int]]:
    """(methods as given, budgets, annotator sets); every bad value is refused before torch loads."""
    methods = split_list(a.methods)
    for m in methods:
        if m not in TABLE:
            describe(m)  # the registry's error: the closest names, the known ones
    if errors := [why for m in methods if (why := method_error(m))]:
        raise LiteLVLMError("; ".join(errors))
    budgets = split_list(a.budgets, int)
    if not budgets or not all(1 <= k <= NUM_PATCHES for k in budgets):
        raise LiteLVLMError(f"--budgets must be in 1..{NUM_PATCHES}; got {a.budgets}")
    if a.arrangement != "direct" and (bad := [k for k in budgets if math.isqrt(k) ** 2 != k]):
        raise LiteLVLMError(f"--arrangement {a.arrangement} pools a square grid: budgets {bad} are not squares "
                            "(196, 81, ...); use --arrangement direct")
    sets = split_list(a.anno_sets, int)
    if not sets or not all(0 <= s <= 3 for s in sets) or len(set(sets)) != len(sets):
        raise LiteLVLMError(f"--anno-sets must be distinct values in 0..3; got {a.anno_sets}")
    return methods, budgets, sets


def run(args: VideoArgs | argparse.Namespace) -> int:
    """Run the study: check the options, then import torch and compute. From code:
    ``run(VideoArgs(out="results/video"))``; the command line passes its parsed namespace."""
    a = as_args(VideoArgs, args)
    check_args(a)
    from analysis.video.compute import run_video

    return run_video(a)


#: this study's options (``analysis.common.study.Study``)
ARGS = VideoArgs
