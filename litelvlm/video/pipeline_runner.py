"""What an ``eval-video`` runner over a family pipeline's video path shares (:class:`PipelineVideoRunner`): the
pipeline loaded from the run's options, its paired CLIP named, one prepared video reused by every expression of that
video, and the masks checked against the video's frames. A family's runner adds its budget rule and its record."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import LiteLVLMError
from ..image_resize import IMAGE_RESIZES, image_resize_kwargs


class PipelineVideoRunner:
    """One loaded pipeline (``pipeline_class.from_model_string`` of the run's options) and the video being scored."""

    extra_columns: list[str] = []

    def __init__(self, a: Any, pipeline_class: type) -> None:
        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.pipe = pipeline_class.from_model_string(a.model, device=a.device, dtype=dtype, clip=a.clip,
                                                     clip_text=a.clip_text,
                                                     **image_resize_kwargs(getattr(a, "image_resize", IMAGE_RESIZES[0])))
        self.model = self.pipe
        #: the paired CLIP (the CLIP-side methods' scores, mapped onto the family's merged grid)
        self.clip_name = self.pipe.describe()["clip"]["model"]
        self.args = a
        self.prepared = None
        self.video: str | None = None

    def new_video(self) -> None:
        """Drop the previous video's work."""
        self.prepared = self.video = None

    def prepared_for(self, rec):
        """The prepared video of ``rec`` (prepared once per video, then reused by each of its expressions)."""
        if self.prepared is None or self.video != rec.video:
            self.prepared = self.pipe.prepare_video([rec.frame(i) for i in range(len(rec.frames))],
                                                    seed=self.args.seed)
            self.video = rec.video
        return self.prepared

    def frame_masks(self, rec, masks: torch.Tensor) -> torch.Tensor:
        """``masks`` (one per frame of ``rec``'s video) as float on the CPU; another count is an error naming it."""
        if masks.shape[0] != len(rec.frames):
            raise LiteLVLMError(f"{rec.video}: {masks.shape[0]} masks for {len(rec.frames)} frames")
        return masks.float().cpu()


__all__ = ["PipelineVideoRunner"]
