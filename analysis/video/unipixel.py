"""``litelvlm eval-video --model unipixel-...``: UniPixel's video path (:mod:`litelvlm.unipixel.video_pipeline`) in the
same study as VideoGLaMM: the same data, J / F / J&F tables and parts, one expression at a time.

What a per-frame budget means on UniPixel (this project's reading, labelled in ``config.json``): UniPixel's LLM sees
the video as one Qwen2.5-VL video of N merged tokens (temporal patches of 2 frames), not frame by frame at 576 CLIP
tokens; a per-frame budget b keeps the same fraction of them, K = round(N b / 576) (at least 1), chosen by the method
over the whole video; ``context_tokens`` is then K per temporal patch (rounded). ``none`` keeps all N.
"""

from __future__ import annotations

import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import BASELINE

#: what ``config.json`` says a per-frame budget is on UniPixel
BUDGET_READING = ("per-frame fraction: K = round(N * budget / 576) of the video's N merged tokens, chosen over the "
                  "whole video (this project's reading)")
NOTE = ("UniPixel's video numbers need its released weights (PolyU-ChenLab/UniPixel-3B, -7B); numbers here come from "
        "the weights named in the weights column")


def own_summary(summary, expr):
    """``summary`` with UniPixel's own Ref-DAVIS / MeViS score beside the DAVIS table (``eval/eval_seg.py`` L197-199,
    L257-265): per expression J and F are frame means (``expressions.parquet``), then ``unipixel_J`` and
    ``unipixel_F`` are means over the (method, budget)'s expressions and ``unipixel_J&F`` their mean (as fractions:
    the script prints them x 100, rounded to 2 decimals)."""
    from litelvlm.video.metrics import mevis_summary

    rows = []
    for method, budget in zip(summary.method, summary.budget, strict=True):
        e = expr[(expr.method == method) & (expr.budget == budget)]
        rows.append(mevis_summary({i: (j, f) for i, (j, f) in enumerate(zip(e.J, e.F, strict=True))}))
    return summary.assign(**{"unipixel_J": [r[0] for r in rows], "unipixel_F": [r[1] for r in rows],
                             "unipixel_J&F": [r[2] for r in rows]})


def video_budget(n: int, budget: int, num_patches: int) -> int:
    """K of N merged tokens for a per-frame budget of ``budget`` of ``num_patches`` (see the module docstring)."""
    return max(1, min(n, round(n * budget / num_patches)))


def method_error(name: str) -> str | None:
    """Why ``name`` cannot run on UniPixel's video path (None: it can)."""
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

    if name == BASELINE:
        return f"{name!r} is the unpruned baseline, run on every video anyway"
    return UniPixelVideoPipeline.method_error(UniPixelVideoPipeline, name)


def offered_methods() -> list[str]:
    """Every method UniPixel's video path runs, no baseline and no analysis oracle, in the registry's order."""
    from litelvlm.methods import get_method, method_names

    return [m for m in method_names() if method_error(m) is None and not get_method(m, "qwen2.5-vl").oracle]


class UniPixelRunner:
    """One loaded UniPixel (its video path) and the prepared video being scored."""

    def __init__(self, a, num_patches: int) -> None:
        from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

        dtype = None if a.dtype == "auto" else getattr(torch, a.dtype)
        self.pipe = UniPixelVideoPipeline.from_model_string(a.model, device=a.device, dtype=dtype, clip=a.clip,
                                                            clip_text=a.clip_text)
        self.model = self.pipe
        self.clip_name = self.pipe.describe()["clip"]["model"]
        self.args = a
        self.num_patches = num_patches
        self.prepared = None
        self.video: str | None = None

    def new_video(self) -> None:
        """Drop the previous video's work."""
        self.prepared = self.video = None

    @torch.no_grad()
    def expression(self, rec, method: str, budget: int) -> tuple[torch.Tensor, int, dict]:
        """((frames, H, W) masks, kept merged tokens per temporal patch, the kept merged tokens) of one expression."""
        pipe = self.pipe
        if self.prepared is None or self.video != rec.video:
            self.prepared = pipe.prepare_video([rec.frame(i) for i in range(len(rec.frames))], seed=self.args.seed)
            self.video = rec.video
        prep = pipe.with_sentences(self.prepared, [rec.sentence.strip()])   # segmentation.py L555: exp.strip()
        n = pipe.num_visual(prep)
        k = n if method == BASELINE else video_budget(n, budget, self.num_patches)
        out = pipe.ground(prep, method, k)
        if out.masks.shape[0] != len(rec.frames):
            raise LiteLVLMError(f"{rec.video}: {out.masks.shape[0]} masks for {len(rec.frames)} frames")
        return out.masks.float().cpu(), round(k / int(prep.grid_thw[0, 0])), {"llm_visual_tokens": k}

    def config(self) -> dict:
        """What ``config.json`` records of this model's run."""
        return {"family": "unipixel", "budget_reading": BUDGET_READING,
                "propagation": self.pipe.describe()["video"]["propagation"]}


__all__ = ["BUDGET_READING", "NOTE", "UniPixelRunner", "method_error", "offered_methods", "own_summary", "video_budget"]
