"""``litelvlm reversal``: its options (:class:`ReversalArgs`) and their checks.

Light (no torch, no pandas): a bad option is refused at once; :func:`analysis.reversal.command.run` imports
the study (:mod:`analysis.reversal.compute`) after the checks.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from analysis.common.options.clip_args import ClipStudyArgs, check_clip_study
from analysis.common.presentation.family_text import CLIP_GRID, merged_grid_families
from litelvlm.cli_args import add_dataclass_arguments, arg
from litelvlm.errors import LiteLVLMError
from litelvlm.refer_layout import check_refer_folder
from litelvlm.registry.families import card
from litelvlm.shared_options import out_option

#: the grids the reversal is measured on: CLIP's own patches, or a family's merged Qwen2.5-VL tokens (the
#: families whose card declares a merged grid, :mod:`analysis.common.measures.merged_grid`)
GRIDS = (CLIP_GRID, *merged_grid_families())
#: where the similarity is measured: CLIP's joint space, or the LLM input space of a model of the ``--grid``
#: family (:mod:`analysis.reversal.llm_space`)
SPACES = (CLIP_SPACE := "clip", "llm")


@dataclass
class ReversalArgs(ClipStudyArgs):
    """The options of one ``reversal`` run (the shared ones in
    :class:`~analysis.common.options.clip_args.ClipStudyArgs`)."""

    out: str = out_option("output folder (reversal.parquet, summary.csv, config.json)")
    save_maps: int = arg(0, help="also write OUT/similarity_maps.parquet: the per-patch similarities of the "
                                 "first N scored sentences (every requested layer), for plots", minimum=0)
    grid: str = arg(CLIP_GRID, choices=list(GRIDS),
                    help="where the similarity is ranked: CLIP's own patches, or the merged Qwen2.5-VL "
                         f"tokens of the family named ({', '.join(card(f).display_name for f in GRIDS[1:])}; "
                         "CLIP on the padded image, its similarity mapped onto the merged grid by overlap "
                         "area, as LiteLVLM selects on that family; needs --pad-to-square; this project's "
                         "study option)")
    space: str = arg("clip", choices=list(SPACES),
                     help="where the similarity is measured: CLIP's joint space (--model a CLIP), or the "
                          "LLM's input space of a model of the --grid family (--model that family's model, "
                          f"e.g. {' or '.join(card(f).default_model for f in GRIDS[1:])}): each merged "
                          "token's relevance to the prompt's mean instruction-token embedding (as "
                          "OpenVINO's CDPruner port scores Qwen tokens); this project's study option")
    video: bool = arg(False, help="the reversal on video frames (this project's study option): every frame "
                                  "of every expression is a sentence, its ground-truth mask the referent; "
                                  "without --video-dir, the synthetic moving-shapes set "
                                  "(analysis/reversal/video.py)")
    video_dir: str | None = arg(None, help="a Ref-DAVIS-17-layout folder for the video reversal (implies "
                                "--video)")
    video_split: str = arg("valid", help="split of --video-dir")
    synthetic_videos: int = arg(2, help="videos of the synthetic set (--video without --video-dir)",
                                minimum=1)
    synthetic_frames: int = arg(8, help="frames per synthetic video", minimum=1)
    synthetic_seed: int = arg(0, help="seed of the synthetic set")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``reversal`` options (one per :class:`ReversalArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, ReversalArgs)


def check_args(a: ReversalArgs) -> None:
    """Raise a :class:`~litelvlm.errors.LiteLVLMError` naming the first invalid option (before any work)."""
    check_clip_study(a)
    if a.video or a.video_dir:
        if a.refer_dir or a.coco_instances:
            raise LiteLVLMError(
                "--video / --video-dir read video frames: drop --refer-dir / --coco-instances")
        if a.grid != CLIP_GRID or a.space != CLIP_SPACE:
            raise LiteLVLMError("--video / --video-dir measure CLIP's own patches in CLIP's space: drop "
                                "--grid / --space")
        if a.video_dir and not Path(a.video_dir).is_dir():
            raise LiteLVLMError(f"--video-dir {a.video_dir!r} is not a folder")
    if a.space != CLIP_SPACE and a.grid == CLIP_GRID:
        raise LiteLVLMError(f"--space {a.space} measures a family's merged tokens: add --grid FAMILY "
                            f"({', '.join(GRIDS[1:])})")
    if a.grid != CLIP_GRID and a.space == CLIP_SPACE and not a.pad_to_square:
        raise LiteLVLMError(f"--grid {a.grid} maps CLIP on the padded image (as LiteLVLM on "
                            f"{card(a.grid).display_name}): add --pad-to-square")
    if a.refer_dir:   # its layout, before anything loads (--coco-instances may give the instances)
        check_refer_folder(a.refer_dir, a.dataset, a.split_by, instances=not a.coco_instances)


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = ReversalArgs
