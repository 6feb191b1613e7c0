"""UniPixel loaded on its video path for ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoRunner`):
one prepared video, each expression grounded at K = round(N b / 576) of its N merged tokens
(:mod:`litelvlm.unipixel.video_eval`), and UniPixel's own Ref-DAVIS / MeViS score beside the DAVIS table."""

from __future__ import annotations

from typing import Any

import torch

from ..budget import Budget, Count
from ..lvlm.method_plan import layer_refusals, planned_methods
from ..video.metrics import mevis_summary
from ..video.pipeline_runner import PipelineVideoRunner
from .video_eval import BUDGET_READING, offered_methods, video_budget
from .video_pipeline import UniPixelVideoPipeline


def own_summary(summary, expr):
    """``summary`` with UniPixel's own Ref-DAVIS / MeViS score beside the DAVIS table (``eval/eval_seg.py``
    L197-199, L257-265): per expression J and F are frame means (``expressions.parquet``), then ``unipixel_J``
    and ``unipixel_F`` are means over the (method, budget)'s expressions and ``unipixel_J&F`` their mean (as
    fractions: the script prints them x 100, rounded to 2 decimals)."""
    rows = []
    for method, budget in zip(summary.method, summary.budget, strict=True):
        e = expr[(expr.method == method) & (expr.budget == budget)]
        rows.append(mevis_summary({i: (j, f) for i, (j, f) in enumerate(zip(e.J, e.F, strict=True))}))
    return summary.assign(**{"unipixel_J": [r[0] for r in rows], "unipixel_F": [r[1] for r in rows],
                             "unipixel_J&F": [r[2] for r in rows]})


class UniPixelRunner(PipelineVideoRunner):
    """One loaded UniPixel (its video path) and the prepared video being scored."""

    def __init__(self, a: Any, num_patches: int) -> None:
        super().__init__(a, UniPixelVideoPipeline)
        self.num_patches = num_patches

    def prompt(self, rec):
        """The video question of ``rec``'s expression on its prepared video (``segmentation.py`` L555:
        exp.strip())."""
        return self.pipe.with_sentences(self.prepared_for(rec), [rec.sentence.strip()])

    def count(self, prep, method: str, budget: Budget) -> Count:
        """K of the video's N merged tokens: all for the baseline, else the per-frame ``budget``'s reading."""
        n = self.pipe.num_visual(prep)
        return Count(n, n) if self.pipe.spec(method).baseline else video_budget(n, budget, self.num_patches)

    def result(self, rec, prep, k: Count, out) -> tuple[torch.Tensor, int, dict]:
        """((frames, H, W) masks, kept merged tokens per temporal patch, the kept merged tokens)."""
        return self.frame_masks(rec, out.masks), round(k / int(prep.grid_thw[0, 0])), {"llm_visual_tokens": k}

    def plan_methods(self, given: list[str], budgets: list[Budget]) -> list[str]:
        """``given``, or every method the video path offers; one whose layer option this model's LLM lacks is
        refused when given and left out, with a warning, by default."""
        candidates = given or offered_methods()
        return planned_methods(given, candidates, layer_refusals(self.pipe, candidates))

    def config(self) -> dict:
        """What ``config.json`` records of this model's run."""
        return {"family": "unipixel", "budget_reading": BUDGET_READING,
                "propagation": self.pipe.describe()["video"]["propagation"]}

    def summary(self, summary, expr):
        """UniPixel's own score beside the DAVIS table (:func:`own_summary`)."""
        return own_summary(summary, expr)


__all__ = ["UniPixelRunner", "own_summary"]
