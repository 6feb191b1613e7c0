"""VideoGLaMM's video path in ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoEval`): per-frame
pruning of its CLIP stream (:mod:`litelvlm.videoglamm.pruning`) on ``eval_referdavis_infer.py``'s clips, and
the LLM-side methods on the LLM's whole visual sequence through the family's ``ground`` at the same kept
fraction, round(3328 K / 576) of its 3328 visual tokens (this project's reading,
:mod:`litelvlm.videoglamm.pipeline`).

Importing this module is light (the options are checked before torch loads); the runner's modules load in
:meth:`VideoGLaMMVideoEval.runner`, which is why they are imported there.
"""

from __future__ import annotations

import math

from ..budget import Budget
from ..errors import LiteLVLMError
from ..models.family_card import Lazy
from ..switches import FRAME_ALLOCATIONS
from ..video.runner import VideoRunArgs
from .config import NUM_FRAMES

#: the pipeline and the video runner (heavy: torch), imported when a method is checked or a run loads
PIPELINE = Lazy("litelvlm.videoglamm.pipeline", "VideoGLaMMPipeline")
RUNNER = Lazy("litelvlm.videoglamm.video_runner", "VideoGLaMMRunner")
#: what the numbers' weights are
NOTE = ("the paper's video numbers need VideoGLaMM's RVOS fine-tuned weights, which are not public; numbers "
        "here come from the weights named in the weights column")
#: the expression rows' columns under a non-uniform ``--allocation``
ALLOCATION_COLUMNS = ["frame_budgets", "kept_tokens", "llm_context_tokens"]


def allocation_weights(text: str) -> str | list[float]:
    """``--allocation``: a rule name, or the 16 per-frame weights it lists (finite, non-negative, not all
    zero)."""
    if text in FRAME_ALLOCATIONS:
        return text
    try:
        weights = [float(x) for x in text.split(",")]
    except ValueError:
        weights = []
    if len(weights) != NUM_FRAMES or not all(math.isfinite(w) and w >= 0
                                             for w in weights) or sum(weights) <= 0:
        raise LiteLVLMError(f"--allocation must be {' or '.join(FRAME_ALLOCATIONS)}, or {NUM_FRAMES} "
                            f"comma-separated non-negative weights, not all zero; got {text!r}")
    return weights


class VideoGLaMMVideoEval:
    """The ``videoglamm`` family's :class:`~litelvlm.video.runner.VideoEval`."""

    note = NOTE

    def check_options(self, a: VideoRunArgs, budgets: list[Budget]) -> None:
        """Square budgets unless ``--arrangement direct`` (the 12 x 12 pooling), and a valid ``--allocation``
        (every token, :data:`Budget.ALL`, is 24 x 24)."""
        squares = [b.tokens for b in budgets if not b.is_all]
        if a.arrangement != "direct" and (bad := [k for k in squares if math.isqrt(k) ** 2 != k]):
            raise LiteLVLMError(f"--arrangement {a.arrangement} pools a square grid: budgets {bad} are not "
                                "squares (196, 81, ...); use --arrangement direct")
        allocation_weights(a.allocation)

    def method_errors(self, methods: list[str], budgets: list[Budget]) -> list[str]:
        """The family's ``method_error`` of each method, asked of the class (no weights load)."""
        VideoGLaMMPipeline = PIPELINE.get()

        return [why for m in methods if (why := VideoGLaMMPipeline.method_error(VideoGLaMMPipeline, m))]

    def runner(self, a: VideoRunArgs):
        """The loaded VideoGLaMM and its paired CLIP
        (:class:`litelvlm.videoglamm.video_runner.VideoGLaMMRunner`)."""
        VideoGLaMMRunner = RUNNER.get()

        return VideoGLaMMRunner(a)


#: the registered video path (:data:`litelvlm.registry.families.TABLE`)
VIDEO_EVAL = VideoGLaMMVideoEval()

__all__ = ["ALLOCATION_COLUMNS", "NOTE", "VIDEO_EVAL", "VideoGLaMMVideoEval",
           "allocation_weights"]
