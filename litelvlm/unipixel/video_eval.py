"""UniPixel's video path in ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoEval`;
:mod:`litelvlm.unipixel.video_pipeline`): the same data, J / F / J&F tables and parts as every family, one
expression at a time.

What a per-frame budget means on UniPixel (this project's reading, labelled in ``config.json``): UniPixel's
LLM sees the video as one Qwen2.5-VL video of N merged tokens (temporal patches of 2 frames), not frame by
frame at 576 CLIP tokens; a per-frame budget b keeps the same fraction of them, K = round(N b / 576) (at least
1), chosen by the method over the whole video; ``context_tokens`` is then K per temporal patch (rounded).
``none`` keeps all N.

Importing this module is light (the options are checked before the weights load); the video pipeline loads in
:meth:`UniPixelVideoEval.runner`, which is why it is imported there.
"""

from __future__ import annotations

from ..budget import Budget, Count
from ..errors import LiteLVLMError
from ..methods import get_method, method_names
from ..models.family_card import Lazy
from ..video.runner import FRAME_PATCHES, VideoRunArgs, fraction_budget

#: the video pipeline and the runner (heavy: torch), imported when a method is checked or a run loads
PIPELINE = Lazy("litelvlm.unipixel.video_pipeline", "UniPixelVideoPipeline")
RUNNER = Lazy("litelvlm.unipixel.video_runner", "UniPixelRunner")
#: what ``config.json`` says a per-frame budget is on UniPixel
BUDGET_READING = ("per-frame fraction: K = round(N * budget / 576) of the video's N merged tokens, chosen "
                  "over the whole video (this project's reading)")
NOTE = ("UniPixel's video numbers need its released weights (PolyU-ChenLab/UniPixel-3B, -7B); numbers here "
        "come from the weights named in the weights column")


def video_budget(n: int, budget: Budget, num_patches: int) -> Count:
    """K of N merged tokens for the per-frame ``budget`` of ``num_patches`` (see the module docstring;
    :func:`litelvlm.video.runner.fraction_budget`)."""
    return fraction_budget(n, budget, num_patches)


def method_error(name: str) -> str | None:
    """Why ``name`` cannot run on UniPixel's video path (None: it can)."""
    UniPixelVideoPipeline = PIPELINE.get()

    if get_method(name).baseline:
        return f"{name!r} is the unpruned baseline, run on every video anyway"
    return UniPixelVideoPipeline.method_error(UniPixelVideoPipeline, name)


def offered_methods() -> list[str]:
    """Every method UniPixel's video path runs, no baseline and no analysis oracle, in the registry's
    order."""
    return [m for m in method_names() if method_error(m) is None and not get_method(m, "qwen2.5-vl").oracle]


class UniPixelVideoEval:
    """The ``unipixel`` family's :class:`~litelvlm.video.runner.VideoEval`."""

    note = NOTE

    def check_options(self, a: VideoRunArgs, budgets: list[Budget]) -> None:
        """``--sam2-video-branch`` and ``--allocation`` are refused: UniPixel's video path always propagates
        by SAM 2's memory and selects among the video's merged tokens at once (any per-frame budget, square or
        not)."""
        if a.sam2_video_branch or a.allocation != "uniform":
            raise LiteLVLMError("--sam2-video-branch and --allocation do not apply: UniPixel's video path "
                                "always propagates by SAM 2's memory and selects among the video's merged "
                                "tokens at once")

    def method_errors(self, methods: list[str], budgets: list[Budget]) -> list[str]:
        """:func:`method_error` of each method."""
        return [why for m in methods if (why := method_error(m))]

    def runner(self, a: VideoRunArgs):
        """The loaded UniPixel on its video path (:class:`litelvlm.unipixel.video_runner.UniPixelRunner`)."""
        UniPixelRunner = RUNNER.get()

        return UniPixelRunner(a, FRAME_PATCHES)


#: the registered video path (:data:`litelvlm.registry.families.TABLE`)
VIDEO_EVAL = UniPixelVideoEval()

__all__ = ["BUDGET_READING", "NOTE", "VIDEO_EVAL", "UniPixelVideoEval", "method_error", "offered_methods",
           "video_budget"]
