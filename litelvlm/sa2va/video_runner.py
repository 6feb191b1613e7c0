"""Sa2VA loaded on its video path for ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoRunner`): one
prepared video (the LLM's first min(5, T) frames, every frame's SAM 2 pixels), each expression grounded at
K = round(N b / 576) of the N merged tokens of those frames (:mod:`litelvlm.sa2va.video_eval`)."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import LiteLVLMError
from ..video.runner import FRAME_PATCHES, fraction_budget
from .pipeline import VIDEO_PRUNING, Sa2VAPipeline
from .video_eval import BUDGET_READING, offered_methods


class Sa2VARunner:
    """One loaded Sa2VA and the prepared video being scored."""

    extra_columns: list[str] = []

    def __init__(self, a: Any) -> None:
        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.pipe = Sa2VAPipeline.from_model_string(a.model, device=a.device, dtype=dtype, clip=a.clip,
                                                    clip_text=a.clip_text)
        self.model = self.pipe
        #: the paired CLIP (the CLIP-side methods' scores, mapped onto each LLM frame's merged grid)
        self.clip_name = self.pipe.describe()["clip"]["model"]
        self.args = a
        self.prepared = None
        self.video: str | None = None

    def new_video(self) -> None:
        """Drop the previous video's work."""
        self.prepared = self.video = None

    @torch.no_grad()
    def expression(self, rec, method: str, budget: int) -> tuple[torch.Tensor, int, dict]:
        """((frames, H, W) masks, kept merged tokens per LLM frame, the kept merged tokens) of one expression."""
        pipe = self.pipe
        if self.prepared is None or self.video != rec.video:
            self.prepared = pipe.prepare_video([rec.frame(i) for i in range(len(rec.frames))], seed=self.args.seed)
            self.video = rec.video
        prep = pipe.with_sentences(self.prepared, [rec.sentence])
        n = pipe.num_visual(prep)
        k = n if pipe.spec(method).baseline else fraction_budget(n, budget, FRAME_PATCHES)
        masks = pipe.ground(prep, method, k).masks[0]
        if masks.shape[0] != len(rec.frames):
            raise LiteLVLMError(f"{rec.video}: {masks.shape[0]} masks for {len(rec.frames)} frames")
        return masks.float().cpu(), round(k / prep.video.llm_frames), {"llm_visual_tokens": k}

    def plan_methods(self, given: list[str], budgets: list[int]) -> list[str]:
        """``given``, or every method the video path offers."""
        return given or offered_methods()

    def config(self) -> dict:
        """What ``config.json`` records of this model's run."""
        return {"family": self.pipe.family, "budget_reading": BUDGET_READING, "video_pruning": VIDEO_PRUNING,
                "propagation": "SAM 2's memory from the first min(5, T) frames (the frames the LLM sees)"}

    def summary(self, summary, expr):
        """``summary`` as it is (Sa2VA's Ref-VOS score is the DAVIS / MeViS J&F of the study)."""
        return summary


__all__ = ["Sa2VARunner"]
