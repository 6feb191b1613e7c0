"""Sa2VA loaded on its video path for ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoRunner`):
one prepared video (the LLM's first min(5, T) frames, every frame's SAM 2 pixels), each expression grounded at
K = round(N b / 576) of the N merged tokens of those frames (:mod:`litelvlm.sa2va.video_eval`)."""

from __future__ import annotations

from typing import Any

import torch

from ..budget import Budget, Count
from ..errors import LiteLVLMError
from ..lvlm.method_plan import layer_refusals, planned_methods
from ..video.pipeline_runner import PipelineVideoRunner
from ..video.runner import FRAME_PATCHES, fraction_budget
from .pipeline import Sa2VAPipeline
from .video import video_method_error
from .video_eval import BUDGET_READING, offered_methods


class Sa2VARunner(PipelineVideoRunner):
    """One loaded Sa2VA and the prepared video being scored."""

    def __init__(self, a: Any) -> None:
        super().__init__(a, Sa2VAPipeline)

    def prompt(self, rec):
        """The Ref-VOS question of ``rec``'s expression on its prepared video."""
        return self.pipe.with_sentences(self.prepared_for(rec), [rec.sentence])

    def count(self, prep, method: str, budget: Budget) -> Count:
        """K of the N merged tokens the LLM sees: all for the baseline, else the per-frame ``budget``'s
        fraction."""
        n = self.pipe.num_visual(prep)
        return Count(n, n) if self.pipe.spec(method).baseline else fraction_budget(n, budget, FRAME_PATCHES)

    def result(self, rec, prep, k: Count, out) -> tuple[torch.Tensor, int, dict]:
        """((frames, H, W) masks, kept merged tokens per LLM frame, the kept merged tokens)."""
        return self.frame_masks(rec, out.masks[0]), round(k / prep.video.llm_frames), {"llm_visual_tokens": k}

    def plan_methods(self, given: list[str], budgets: list[Budget]) -> list[str]:
        """``given``, or every method the video path offers, each checked against the loaded backbone's own
        refusals (Sa2VA-InternVL3 refuses methods the Qwen-VL backbones run), before anything is written."""
        if errors := [why for m in given if (why := video_method_error(self.pipe, m))]:
            raise LiteLVLMError("; ".join(errors))
        candidates = given or [m for m in offered_methods() if video_method_error(self.pipe, m) is None]
        return planned_methods(given, candidates, layer_refusals(self.pipe, candidates))

    def config(self) -> dict:
        """What ``config.json`` records of this model's run."""
        return {"family": self.pipe.family, "budget_reading": BUDGET_READING,
                "video_pruning": self.pipe.describe()["video_pruning"],
                "propagation": "SAM 2's memory from the first min(5, T) frames (the frames the LLM sees)"}

    def summary(self, summary, expr):
        """``summary`` as it is (Sa2VA's Ref-VOS score is the DAVIS / MeViS J&F of the study)."""
        return summary


__all__ = ["Sa2VARunner"]
