"""Sa2VA's video path in ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoEval`): the LLM sees the
first min(5, T) frames, one image each, and SAM 2's memory carries each ``[SEG]`` prompt over the rest
(:mod:`litelvlm.sa2va.video`, ``sa2va_eval_ref_vos.py``'s path); the expression goes in as the meta file gives
it (``refVOS.py`` L99 formats it into the question).

What a per-frame budget means on Sa2VA (this project's reading, labelled in ``config.json``), as on every
family whose LLM does not see the video frame by frame at 576 CLIP tokens: a per-frame budget b keeps the same
fraction of the N merged tokens of the frames the LLM sees, K = round(N b / 576) (at least 1,
:func:`litelvlm.video.runner.fraction_budget`), chosen by the method over the whole video, the frames' blocks
joined into one (this project's adaptation, :data:`litelvlm.sa2va.pipeline.VIDEO_PRUNING`); ``context_tokens``
is then K per LLM frame (rounded). ``none`` keeps all N in the official prompt.

Importing this module is light (the options are checked before torch loads); the pipeline loads in
:meth:`Sa2VAVideoEval.runner` and :func:`method_error` (:data:`PIPELINE`, :data:`RUNNER`: imported on first
use).
"""

from __future__ import annotations

from ..budget import Budget
from ..errors import LiteLVLMError
from ..methods import get_method, method_names
from ..models.family_card import Lazy
from ..video.runner import VideoRunArgs

#: the pipeline, the video runner and the video path's method check (heavy: torch), imported when a method is
#: checked or a run loads
PIPELINE = Lazy("litelvlm.sa2va.pipeline", "Sa2VAPipeline")
RUNNER = Lazy("litelvlm.sa2va.video_runner", "Sa2VARunner")
VIDEO_METHOD_ERROR = Lazy("litelvlm.sa2va.video", "video_method_error")
#: what ``config.json`` says a per-frame budget is on Sa2VA
BUDGET_READING = ("per-frame fraction: K = round(N * budget / 576) of the N merged tokens of the first "
                  "min(5, T) frames, chosen over the whole video, the frames' blocks joined (this project's "
                  "reading)")
NOTE = ("Sa2VA's video numbers need its released weights (ByteDance/Sa2VA-Qwen2_5-VL-3B, -7B); numbers here "
        "come from the weights named in the weights column")


def method_error(name: str) -> str | None:
    """Why ``name`` cannot run on Sa2VA's video path (None: it can)."""
    Sa2VAPipeline = PIPELINE.get()
    video_method_error = VIDEO_METHOD_ERROR.get()

    if Sa2VAPipeline.spec(Sa2VAPipeline, name).baseline:
        return f"{name!r} is the unpruned baseline, run on every video anyway"
    return video_method_error(Sa2VAPipeline, name)


def offered_methods() -> list[str]:
    """Every method Sa2VA's video path runs, no baseline and no analysis oracle, in the registry's order."""
    return [m for m in method_names() if method_error(m) is None and not get_method(m, "qwen2.5-vl").oracle]


class Sa2VAVideoEval:
    """The ``sa2va`` family's :class:`~litelvlm.video.runner.VideoEval`."""

    note = NOTE

    def check_options(self, a: VideoRunArgs, budgets: list[Budget]) -> None:
        """``--sam2-video-branch`` and ``--allocation`` are refused: Sa2VA always propagates by SAM 2's memory
        from the frames the LLM sees, and selects among the merged tokens of those frames at once."""
        if a.sam2_video_branch or a.allocation != "uniform":
            raise LiteLVLMError("--sam2-video-branch and --allocation do not apply: Sa2VA's video path "
                                "always propagates by SAM 2's memory from the frames its LLM sees and "
                                "selects among their merged tokens at once")

    def method_errors(self, methods: list[str], budgets: list[Budget]) -> list[str]:
        """:func:`method_error` of each method."""
        return [why for m in methods if (why := method_error(m))]

    def runner(self, a: VideoRunArgs):
        """The loaded Sa2VA on its video path (:class:`litelvlm.sa2va.video_runner.Sa2VARunner`)."""
        Sa2VARunner = RUNNER.get()

        return Sa2VARunner(a)


#: the registered video path (:data:`litelvlm.registry.families.TABLE`)
VIDEO_EVAL = Sa2VAVideoEval()

__all__ = ["BUDGET_READING", "NOTE", "VIDEO_EVAL", "Sa2VAVideoEval", "method_error", "offered_methods"]
