"""Ref-DAVIS-17's evaluation layout, shared by every family's video path: the records grouped by video, the
four annotator sets, the ground-truth label maps and the predicted ones (as ``eval_referdavis_infer.py`` of
mbzuai-oryx/VideoGLaMM @6b15b1e forms them; its line numbers below)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from .records import VideoExpression, read_object_ids


def label_maps(object_masks: torch.Tensor) -> np.ndarray:
    """(T, H, W) uint8 label maps of (num_obj, T, H, W) masks (L249-256): values < 0.5 zeroed, 0.1 background
    first, argmax (object k gets label k + 1)."""
    anno = object_masks.float().clone()
    t, h, w = anno.shape[-3:]
    anno[anno < 0.5] = 0.0
    background = 0.1 * torch.ones(1, t, h, w)
    return torch.argmax(torch.cat([background, anno], dim=0), dim=0).numpy().astype(np.uint8)


def annotator_expressions(records: list[VideoExpression], anno_id: int) -> list[VideoExpression]:
    """The expressions of annotator set ``anno_id`` of one video's records, one per object (L164-172)."""
    if len(records) % 4:
        raise ValueError(f"video {records[0].video!r} has {len(records)} expressions, not four per object")
    return [records[obj * 4 + anno_id] for obj in range(len(records) // 4)]


def by_video(records: list[VideoExpression]) -> OrderedDict[str, list[VideoExpression]]:
    """Records grouped by video, in the meta file's order."""
    out: OrderedDict[str, list[VideoExpression]] = OrderedDict()
    for rec in records:
        out.setdefault(rec.video, []).append(rec)
    return out


def ground_truth(rec: VideoExpression) -> np.ndarray:
    """(T, H, W) object-id label maps of ``rec``'s video (its Annotations PNGs)."""
    return np.stack([read_object_ids(rec.masks.path(rec, i)) for i in range(len(rec.frames))])


__all__ = ["annotator_expressions", "by_video", "ground_truth", "label_maps"]
