"""Ref-DAVIS-17 with VideoGLaMM as ``eval_referdavis_infer.py`` runs it, scored by
:mod:`litelvlm.video.metrics` (mbzuai-oryx/VideoGLaMM @ 6b15b1e).

Details: docs/videoglamm.md (``litelvlm.videoglamm.referdavis``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..video import metrics
from ..video.datasets import load_ref_davis
from ..video.records import VideoExpression
from ..video.ref_davis import annotator_expressions, by_video, ground_truth, label_maps
from .inference import prepare_clip, segment_clip
from .prompt import ANSWER

CLIP_LENGTH = 64
#: eval_referdavis_infer.py L166
ANNOTATOR_SETS = ("Davis17_annot1", "Davis17_annot1_full_video", "Davis17_annot2",
                  "Davis17_annot2_full_video")


def clip_ranges(video_len: int, length: int = CLIP_LENGTH) -> list[range]:
    """The frame ranges the script runs one at a time (L184-185)."""
    return [range(start, min(start + length, video_len)) for start in range(0, video_len, length)]



@torch.no_grad()
def expression_masks(model, tokenizer, rec: VideoExpression, prepared: dict | None = None,
                     answer: str | None = ANSWER, visual: Callable | None = None,
                     sam2_video_branch: bool = False) -> torch.Tensor:
    """(T, H, W) float 0/1 masks of one expression over its whole video, clip by clip. ``prepared`` caches
    each clip's tower and SAM 2 work by (video, first frame): it does not depend on the expression. A
    generated answer (``answer=None``) without ``[SEG]`` gives empty masks (the official script fails there:
    L236). ``visual(prepared_clip, rec)`` gives each clip's LLM visual input instead of the unpruned one (a
    pruned set). ``sam2_video_branch``: SAM 2's memory propagation within each clip (the official
    ``--use_sam2_video_branch``)."""
    prepared = {} if prepared is None else prepared
    out = []
    for frames in clip_ranges(len(rec.frames)):
        key = (rec.video, frames.start)
        if key not in prepared:
            prepared[key] = prepare_clip(model, [np.asarray(rec.frame(i)) for i in frames])
        vis = None if visual is None else visual(prepared[key], rec)
        masks = segment_clip(model, tokenizer, prepared[key], rec.sentence, answer=answer, visual=vis,
                             sam2_video_branch=sam2_video_branch).masks.float()
        out.append(masks[:, 0] if masks.shape[1] else masks.new_zeros(masks.shape[0], *masks.shape[2:]))
    return torch.cat(out, dim=0)





def evaluate_ref_davis(model, tokenizer, root, split: str = "valid", videos: list[str] | None = None,
                       answer: str | None = ANSWER,
                       sam2_video_branch: bool = False) -> dict[str, metrics.Summary]:
    """J&F per annotator set (unsupervised DAVIS task) of VideoGLaMM on a Ref-DAVIS-layout folder (``answer``
    None: generated greedily, as the official script; ``sam2_video_branch``: its
    ``--use_sam2_video_branch``)."""
    groups = by_video(load_ref_davis(root, split))
    chosen = [v for v in groups if videos is None or v in videos]
    sequences: dict[str, list] = {name: [] for name in ANNOTATOR_SETS}
    for video in chosen:
        records = groups[video]
        gt, void = metrics.gt_objects(ground_truth(records[0]))
        prepared: dict = {}
        for anno_id, name in enumerate(ANNOTATOR_SETS):
            masks = torch.stack([expression_masks(model, tokenizer, r, prepared, answer,
                                                  sam2_video_branch=sam2_video_branch)
                                 for r in annotator_expressions(records, anno_id)])
            pred = metrics.pred_objects(label_maps(masks))
            sequences[name].append((video, gt, pred, void))
    return {name: metrics.evaluate(seqs, task="unsupervised") for name, seqs in sequences.items()}


__all__ = ["ANNOTATOR_SETS", "CLIP_LENGTH", "annotator_expressions", "by_video", "clip_ranges",
           "evaluate_ref_davis", "expression_masks", "ground_truth", "label_maps"]
