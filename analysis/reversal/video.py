"""The reversal on video frames: ``litelvlm reversal --video`` (the synthetic moving-shapes set) or
``--video-dir DIR`` (a Ref-DAVIS-17-layout folder, ``litelvlm.video.datasets.load_ref_davis``).

Every frame of every expression is one "sentence" of the image study: the frame is the image, the expression
the text, the expression's ground-truth mask on that frame (the union over its objects) the referent; the same
CLIP similarity, the same exclusions (a frame where the object is absent or cut by the crop is excluded and
counted) and the same statistics (:func:`analysis.common.measures.clip_reversal.run_study`,
:func:`~analysis.common.measures.clip_reversal.summarise_reversal`). The ids are stable hashes of the names
(``image_id`` of video/frame, ``ann_id`` of video/objects, ``ref_id`` of video/expression, ``sent_id`` of the
three), ``category`` is the video (so the summary's ``category`` breakdown is per video), and
``reversal.parquet`` gains ``video``, ``frame``, ``frame_index`` and ``exp_id``. This project's study option
(the paper's reversal is on RefCOCO images).
"""

from __future__ import annotations

import tempfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from analysis.common.measures.clip_reversal import prompts_for, resolve_layers, vision_num_layers
from analysis.common.runs.command import Screen
from analysis.reversal.compute import OPTIONAL_OUTPUTS, _run_locked
from litelvlm.clip import load_clip
from litelvlm.data.refer import ReferRecord
from litelvlm.errors import LiteLVLMError
from litelvlm.runs.run_folder import RunFolder
from litelvlm.video.checks import check_videos
from litelvlm.video.datasets import load_ref_davis
from litelvlm.video.synthetic import write_synthetic_videos

#: the synthetic set's frame size (width, height): CLIP's 336-px crop sees its whole width
SYNTHETIC_SIZE = (128, 96)


def stable_id(*names: str) -> int:
    """A non-negative 31-bit id of ``names`` (the same on every run)."""
    return zlib.crc32("|".join(names).encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class FrameRecord(ReferRecord):
    """One frame of one referring expression, as a record of the image study."""

    video: str = ""
    frame: str = ""
    frame_index: int = 0
    exp_id: str = ""
    expression: Any = field(default=None, repr=False, compare=False)

    def mask(self, parts: str = "union") -> np.ndarray:
        """The expression's ground-truth mask on this frame (the union over its objects)."""
        return np.asarray(self.expression.mask(self.frame), dtype=bool)


def video_folder(a, tmp: str | Path) -> Path:
    """``--video-dir``, or the synthetic set written under ``tmp`` (``--synthetic-videos/-frames/-seed``)."""
    if a.video_dir:
        return Path(a.video_dir)

    return write_synthetic_videos(Path(tmp) / "synthetic", videos=a.synthetic_videos,
                                  frames=a.synthetic_frames, size=SYNTHETIC_SIZE, seed=a.synthetic_seed)


def frame_records(root: Path, split: str, limit: int | None = None) -> list[FrameRecord]:
    """One record per (expression, frame) of the split's expressions with masks (the first ``limit``
    expressions), their videos' files checked first (:func:`litelvlm.video.checks.check_videos`)."""
    expressions = [e for e in load_ref_davis(root, split) if e.has_masks][:limit]
    if not expressions:
        raise LiteLVLMError(f"{root} has no expression with masks in split {split!r}")
    # a missing or odd frame or annotation is refused, not excluded sentence by sentence
    check_videos(expressions)
    out = []
    for e in expressions:
        objects = ",".join(map(str, e.obj_ids))
        for i, name in enumerate(e.frames):
            w, h = e.frame_size(i)
            out.append(FrameRecord(
                image_path=e.frame_path(i), image_id=stable_id(e.video, name),
                ref_id=stable_id(e.video, e.exp_id),
                ann_id=stable_id(e.video, objects), sent_id=stable_id(e.video, e.exp_id, name),
                sentence=e.sentence,
                category=e.video, category_id=0, split=split, height=h, width=w, video=e.video, frame=name,
                frame_index=i, exp_id=e.exp_id, expression=e))
    return out


def with_frame_columns(df: pd.DataFrame, records: list[FrameRecord]) -> pd.DataFrame:
    """``df`` (rows keyed by ``sent_id``) with each row's ``video``, ``frame``, ``frame_index`` and
    ``exp_id``."""
    by_sent = {r.sent_id: r for r in records}
    if len(by_sent) != len(records):
        raise LiteLVLMError("two video frames of the set hash to the same sentence id; rename one")
    cols = {"video": [by_sent[s].video for s in df["sent_id"]],
            "frame": [by_sent[s].frame for s in df["sent_id"]],
            "frame_index": [by_sent[s].frame_index for s in df["sent_id"]],
            "exp_id": [by_sent[s].exp_id for s in df["sent_id"]]}
    out = df.copy()
    for i, (name, values) in enumerate(cols.items()):
        out.insert(1 + i, name, values)
    return out


def run_video_reversal(a, screen: Screen = Screen()) -> int:
    """``litelvlm reversal --video`` / ``--video-dir``: the image study's statistics on the frames'
    referents; ``screen`` says what it prints."""
    with tempfile.TemporaryDirectory() as tmp:
        records = frame_records(video_folder(a, tmp), a.video_split, a.limit_sentences)
        if not a.video_dir:  # a set written afresh each run: its frames' cache keys never repeat
            a = replace(a, cache=False)
        clip = load_clip(a.model, a.backend, device=a.device, dtype=getattr(torch, a.dtype), defer=True)
        layers = resolve_layers(a.layers, vision_num_layers(clip))
        prompts = prompts_for(records, a.text_template, a.seed)
        with RunFolder(a.out, owned=OPTIONAL_OUTPUTS, command="reversal") as folder:
            return _run_locked(a, clip, records, layers, prompts, folder,
                               extra_columns=lambda df: with_frame_columns(df, records), screen=screen)
