"""The video contract of ``litelvlm eval-video``: what a family with a video path offers the video study,
found through the family registry (:func:`litelvlm.registry.families.video_eval`, from an entry's
``video_eval``), so the study names no family.

A family's :class:`VideoEval` is light (importing it loads no torch): it checks the family's own options
before anything is written, says why a method cannot run on its video path, and loads its
:class:`VideoRunner`, which segments expressions over their whole video at a per-frame
:class:`~litelvlm.budget.Budget` (of :data:`FRAME_PATCHES`; the study checks its range once, against a frame's
patches, before anything loads): its ``ground`` takes any number of one video's expressions, the study's one
entry point at every ``eval-video --batch-size``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from ..budget import Budget, Count

log = logging.getLogger(__name__)

#: the per-frame budget's unit: CLIP tokens of one 336-px frame (24 x 24 patches); the unpruned run's budget
FRAME_PATCHES = 576


def fraction_budget(n: int, budget: Budget, num_patches: int = FRAME_PATCHES) -> Count:
    """K of a video's N visual tokens for the per-frame ``budget`` b of ``num_patches``: the same fraction,
    K = round(N b / num_patches), at least 1 (this project's reading for a family whose LLM does not see the
    video frame by frame at ``num_patches`` tokens); a :class:`~litelvlm.budget.Count` of those N, within them
    by construction, that the family's ``ground`` (handed ``Budget.of(K)``) does not check again."""
    b = budget.count(num_patches)
    return Count(max(1, min(n, round(n * b / num_patches))), n)


class VideoRunArgs(Protocol):
    """What a family's video runner reads of the run's options (``litelvlm eval-video``'s provide each)."""

    model: Any                  # a model string (``ModelSpec``)
    device: str
    dtype: str                  # auto, float32, bfloat16, float16
    clip: Any                   # the paired CLIP's model string (None: the family's default)
    clip_text: str
    attn: str | None            # the attention kernel (None: the family's official one)
    image_resize: str
    positions: str              # ``ground``'s position rule
    seed: int
    arrangement: str            # VideoGLaMM: how K kept tokens meet its pooling
    allocation: str             # VideoGLaMM: how a clip's tokens are shared by its frames
    sam2_video_branch: bool     # VideoGLaMM: SAM 2's memory propagation


@runtime_checkable
class VideoRunner(Protocol):
    """One loaded model on its video path and the caches of the video being scored."""

    #: the paired CLIP's model string (None: no CLIP)
    clip_name: str | None
    #: the loaded model (its ``dtype`` is recorded)
    model: Any
    #: the family's grounding pipeline the video path runs (``pipe.language_model``: the LLM's decoder stack,
    #: where ``--prefill captured`` is installed)
    pipe: Any
    #: columns the expression rows carry beyond the study's (in order)
    extra_columns: list[str]

    def new_video(self, decoded: Any = None) -> None:
        """Drop the previous video's work; ``decoded``: the next video's frames, decoded ahead (a
        :class:`litelvlm.video.decoded.DecodedVideo`; None: each frame is decoded where it is read)."""

    def ground(self, recs: list, method: str, budget: Budget, batched: bool = True) -> list[tuple]:
        """[(prompt, K, output)] of expressions ``recs`` of one video at the per-frame ``budget``, in order:
        several in one LLM forward (``batched``) where they can share it, else (one expression, a method that
        cannot: :meth:`batch_error`, or ``batched=False``) one by one, each as :meth:`expression`."""

    def result(self, rec, prep, k, out) -> tuple[Any, int | None, dict]:
        """:meth:`expression`'s result of ``rec`` from its (prompt, K, output) of :meth:`ground`."""

    def expression(self, rec, method: str, budget: Budget) -> tuple[Any, int | None, dict]:
        """((T, H, W) float 0/1 masks, context tokens per frame (None: not per frame), the row's extra
        columns, ``llm_visual_tokens`` among them) of one expression at the per-frame ``budget``:
        :meth:`ground` of that one expression, then :meth:`result`."""

    def batch_error(self, method: str) -> str | None:
        """Why ``method`` cannot ground several expressions of a video in one LLM forward (None: it can;
        where it cannot, :meth:`ground` runs them one by one itself): what the study reports, not a path."""

    def plan_methods(self, given: list[str], budgets: list[Budget]) -> list[str]:
        """The methods to run: ``given`` (refused with the reason when they cannot run), or the family's
        default."""

    def config(self) -> dict:
        """What ``config.json`` records of this family's run beyond the options."""

    def summary(self, summary, expr):
        """``summary`` with the family's own score columns, if any."""


@runtime_checkable
class VideoEval(Protocol):
    """What a family's video path declares before anything loads."""

    #: the closing note printed and recorded in ``config.json``: where the numbers' weights come from
    note: str

    def check_options(self, a: VideoRunArgs, budgets: list[Budget]) -> None:
        """Refuse (:class:`~litelvlm.errors.LiteLVLMError`) the study's options this family cannot take;
        light."""

    def method_errors(self, methods: list[str], budgets: list[Budget]) -> list[str]:
        """Why each method of ``methods`` cannot run on this video path (empty: all can); loads no weights."""

    def runner(self, a: VideoRunArgs) -> VideoRunner:
        """The loaded model (``a.model``, ``a.device``, ``a.dtype``, ...) on its video path."""


__all__ = ["FRAME_PATCHES", "VideoEval", "VideoRunArgs", "VideoRunner", "fraction_budget"]
