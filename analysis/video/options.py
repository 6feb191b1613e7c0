"""``litelvlm eval-video``: its options (:class:`VideoArgs`) and their checks.

Referring video segmentation with VideoGLaMM on a Ref-DAVIS-layout folder, every pruning method the
``videoglamm`` family runs at every per-frame budget K (of each frame's 576 CLIP tokens): the CLIP-side
methods per frame (``litelvlm.videoglamm.pruning``), the LLM-side ones on the LLM's whole visual sequence at
the same kept fraction, round(3328 K / 576) of its 3328 visual tokens (this project's reading,
``litelvlm.videoglamm.pipeline``), scored by J, F and J&F (DAVIS 2017, unsupervised task, per annotator set;
``litelvlm.video.metrics``). Without ``--video-dir`` the synthetic moving-shapes set is written to a temporary
folder, so the study runs offline with ``--out`` alone.

The paper's video numbers need VideoGLaMM's RVOS fine-tuned weights, which are not public; the default model
is random weights (``videoglamm-tiny-random:0``) and its numbers mean nothing.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.video.command.run` imports
:mod:`analysis.video.compute` after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.grounding.grounding_runs import check_budgets
from analysis.common.options.defaults import VIDEO_BUDGETS
from analysis.common.options.model_args import attn_arg, check_attn_device, positions_arg
from analysis.common.options.prefill_args import PrefillArgs, check_prefill, resolve_prefill
from litelvlm.budget import Budget
from litelvlm.cli_args import add_dataclass_arguments, arg, read_declared, split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.image_resize import image_resize_arg
from litelvlm.methods import TABLE, describe, is_baseline
from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry.families import DEFAULT_VIDEO_MODEL, cards, check_image_resize, resolve, video_eval
from litelvlm.shared_options import (
    DTYPES,
    boot_seed_option,
    budgets_option,
    device_option,
    dtype_option,
    methods_option,
    model_option,
    n_boot_option,
    out_option,
    seed_option,
)
from litelvlm.switches import ARRANGEMENTS, CLIP_TEXTS
from litelvlm.video.datasets import MEVIS, REF_DAVIS, REF_YOUTUBE_VOS, SPLITS
from litelvlm.video.runner import FRAME_PATCHES

#: the datasets eval-video reads (``--dataset``) and the split each scores by default: the first with public
#: masks (Ref-DAVIS-17, MeViS) or the server's (Refer-YouTube-VOS); ``analysis.video.protocols`` evaluates the
#: last two
DEFAULT_SPLITS: dict[str, str] = {REF_DAVIS: "valid", REF_YOUTUBE_VOS: "valid", MEVIS: "valid_u"}
#: each dataset's display name, as the protocol a run used is named on screen and in its figures' titles
DATASET_NAMES: dict[str, str] = {REF_DAVIS: "Ref-DAVIS-17", REF_YOUTUBE_VOS: "Refer-YouTube-VOS",
                                 MEVIS: "MeViS"}
NUM_PATCHES = FRAME_PATCHES                         # the per-frame budget's unit
#: the families with a video path, in registry order
VIDEO_CARDS = [c for c in cards() if c.video_eval]
#: ``--model``'s help: each family with a video path, its model strings, its default and the paper's model
MODEL_HELP = "; ".join(f"{c.display_name} ({', '.join(c.preset_strings)} or a checkpoint folder; "
                       f"{c.model_help})"
                       for c in VIDEO_CARDS)


@dataclass
class VideoArgs(PrefillArgs):
    """Options of ``litelvlm eval-video``."""

    out: str = out_option("output folder (summary.csv, expressions.parquet, config.json; resumable)")
    video_dir: str | None = arg(None, help="the --dataset's folder in its released layout (Ref-DAVIS-17: "
                                           "meta_expressions/<split>/..., <split>/JPEGImages, "
                                           "<split>/Annotations); default: the synthetic moving-shapes set "
                                           "(Ref-DAVIS-17 layout), written to a temporary folder")
    dataset: str = arg(REF_DAVIS, help="the layout and protocol of --video-dir: ref-davis17 (DAVIS J&F per "
                                       "annotator set), mevis (MeViS's per-expression J&F on valid_u; the "
                                       "server's zips on valid) or ref-youtube-vos (valid: the server's zips "
                                       "only, its J&F comes from the server)", choices=list(DEFAULT_SPLITS))
    split: str | None = arg(None, help="split of --video-dir (default: valid; valid_u for mevis)")
    model: ModelSpec = model_option(DEFAULT_VIDEO_MODEL, help="a model of a family with a video path, run on "
                                    "that family's own video path (what each offers: docs/video.md): "
                                    f"{MODEL_HELP}")
    clip: ModelSpec | None = arg(None, help="the CLIP paired with the family's vision tower for its text "
                                            "side, or the family's paired CLIP (default: "
                                            "openai/clip-vit-large-patch14-336, or the matching random CLIP "
                                            "for a random model)")
    methods: list[str] = methods_option([], help="methods (default: every method the family's video path "
                                        "runs on the model, CLIP-side ones first, oracles aside); the "
                                        "unpruned baseline is always run")
    budgets: list[Budget] = budgets_option(VIDEO_BUDGETS, help="CLIP tokens kept per frame (1..576); "
                                           "LLM-side methods and a family seeing the video as merged tokens "
                                           "keep the same fraction of the video's visual tokens")
    arrangement: str = arg("pool", help="how K kept tokens meet the square-only pooling: pool (to 12x12, the "
                                        "default), pool-min (to min(sqrt K, 12) squared), direct (no pooling)"
                           , choices=list(ARRANGEMENTS))
    allocation: str = arg("uniform", help="how a clip's 16 x K tokens are shared by its frames (this "
                                          "project's idea, the family's allocation module): uniform (K each, "
                                          "the default), relevance (by CLIP's retrieval of the frames by the "
                                          "expression) or 16 comma-separated weights; with pool / pool-min "
                                          "every frame gets a square (the total at most 16 K), with direct "
                                          "any count (the total exactly 16 K)")
    clip_text: str = arg("expression", help="CLIP text of the text-reading methods: the expression, or the "
                                            "family's question", choices=list(CLIP_TEXTS))
    image_resize: str = image_resize_arg()
    sam2_video_branch: bool = arg(False, help="SAM 2's memory propagation from each clip's frame 0 (the "
                                              "family's --use_sam2_video_branch) instead of frame-wise "
                                              "masks; recorded in config.json, a folder of the other kind is "
                                              "refused")
    anno_sets: list[str] = arg(["0", "1", "2", "3"], help="Ref-DAVIS annotator sets scored (0..3; "
                               "ref-davis17 only)", each=int)
    limit_videos: int | None = arg(None, help="only the first N videos", minimum=1)
    synthetic_videos: int = arg(2, help="videos of the synthetic set (without --video-dir)", minimum=1)
    synthetic_frames: int = arg(8, help="frames per synthetic video", minimum=2)
    synthetic_seed: int = arg(0, help="seed of the synthetic set")
    seed: int = seed_option("seed of the random selector (frame f draws with seed + f) and (without "
                            "--boot-seed) of the bootstrap")
    n_boot: int = n_boot_option("bootstrap replicates (over videos) for the intervals, comparisons.csv and "
                                "claims.csv, and random swap patterns of the paired test beyond 16 videos")
    boot_seed: int | None = boot_seed_option()
    device: str = device_option()
    batch_size: int = arg(1, help="expressions of one video per LLM forward (this project's addition): B "
                                  "prompts sharing the video's frames right-padded through one masked "
                                  "forward, each pruned by its own selection, its masks from SAM 2 as at 1; "
                                  "a method or family that cannot share a forward runs at 1, named once with "
                                  "the reason; each (method, budget)'s first batch is checked against batch "
                                  "1 (batch_check.csv)",
                          minimum=1)
    dtype: str = dtype_option("auto", help="model dtype (auto: the checkpoint's)",
                              choices=["auto", *DTYPES])
    attn: str | None = attn_arg()
    positions: str = positions_arg()

    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's budgets; the command line's are read already
        # read once: the command line's already, a Python caller's here
        self.model = resolve(self.model)   # resolved once: the value travels (a resolved one as it is)
        self.clip = None if self.clip is None else ModelSpec.of(self.clip)
        check_attn_device(self.attn, self.device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``eval-video`` options (one per :class:`VideoArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, VideoArgs)


def method_error(name: str) -> str | None:
    """Why ``--methods`` may not name ``name`` (None: it may), read from the registry's table alone; what the
    family cannot run is refused by its video path (``method_errors``) before anything is written."""
    if is_baseline(name):
        return f"{name!r} is the unpruned baseline, run on every video anyway"
    return None


def check_args(a: VideoArgs) -> tuple[list[str], list[Budget], list[int]]:
    """(methods as given, per-frame budgets, annotator sets); every bad value is refused before anything is
    written (before torch loads: the budgets' range by
    :func:`~analysis.common.grounding.grounding_runs.check_budgets` against a frame's
    :data:`NUM_PATCHES`, the family's own options by its light video path,
    :func:`~litelvlm.registry.families.video_eval`)."""
    a.prefill = resolve_prefill(a.prefill, a.device)   # auto: captured on cuda, eager elsewhere
    check_prefill(a.prefill, False, "off", a.capture, a.device, a.encoders)
    methods = split_list(a.methods)
    for m in methods:
        if m not in TABLE:
            describe(m)  # the registry's error: the closest names, the known ones
    if errors := [why for m in methods if (why := method_error(m))]:
        raise LiteLVLMError("; ".join(errors))
    a.budgets = budgets = check_budgets(a.budgets, NUM_PATCHES)   # the one range check (1..576 a frame), kept
    if a.split is None:
        a.split = DEFAULT_SPLITS[a.dataset]
    if a.split not in SPLITS[a.dataset]:
        raise LiteLVLMError(f"--split {a.split!r}: {a.dataset} has the splits {', '.join(SPLITS[a.dataset])}")
    if a.video_dir is None and a.dataset != REF_DAVIS:
        raise LiteLVLMError(f"--dataset {a.dataset} needs --video-dir (the synthetic set is in the "
                            "Ref-DAVIS-17 layout)")
    video_eval(a.model).check_options(a, budgets)
    check_image_resize(a.image_resize, a.model)
    sets = split_list(a.anno_sets, int)
    if not sets or not all(0 <= s <= 3 for s in sets) or len(set(sets)) != len(sets):
        raise LiteLVLMError(f"--anno-sets must be distinct values in 0..3; got {a.anno_sets}")
    return methods, budgets, sets


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = VideoArgs
