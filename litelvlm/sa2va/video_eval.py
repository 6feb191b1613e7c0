"""Sa2VA's video path in ``litelvlm eval-video`` (:class:`litelvlm.video.runner.VideoEval`): the LLM sees the first
min(5, T) frames, one image each, and SAM 2's memory carries each ``[SEG]`` prompt over the rest
(:mod:`litelvlm.sa2va.video`, ``sa2va_eval_ref_vos.py``'s path); the expression goes in as the meta file gives it
(``refVOS.py`` L99 formats it into the question).

Only the unpruned run (``none``, all N merged tokens) is offered: pruning a Sa2VA video is refused with its reason
(its visual tokens lie in one block per frame; :data:`litelvlm.sa2va.pipeline.VIDEO_PRUNING`).

Importing this module is light (the options are checked before torch loads); the pipeline loads in
:meth:`Sa2VAVideoEval.runner` and :meth:`Sa2VAVideoEval.method_errors`, which is why it is imported there.
"""

from __future__ import annotations

from typing import Any

from ..errors import LiteLVLMError

#: what ``config.json`` says a per-frame budget is on Sa2VA
BUDGET_READING = ("none: only the unpruned run (all N merged tokens of the first min(5, T) frames) is offered on "
                  "Sa2VA's video path")
NOTE = ("Sa2VA's video numbers need its released weights (ByteDance/Sa2VA-Qwen2_5-VL-3B, -7B); numbers here come "
        "from the weights named in the weights column")


class Sa2VAVideoEval:
    """The ``sa2va`` family's :class:`~litelvlm.video.runner.VideoEval`."""

    note = NOTE

    def check_options(self, a: Any, budgets: list[int]) -> None:
        """``--sam2-video-branch`` and ``--allocation`` are refused: Sa2VA always propagates by SAM 2's memory from
        the frames the LLM sees, and its video is not pruned."""
        if a.sam2_video_branch or a.allocation != "uniform":
            raise LiteLVLMError("--sam2-video-branch and --allocation are VideoGLaMM's (its frame-wise masks, its 16 "
                                "CLIP frames); Sa2VA's video path always propagates by SAM 2's memory from the frames "
                                "its LLM sees")

    def method_errors(self, methods: list[str], budgets: list[int]) -> list[str]:
        """Every pruning method is refused, in one line with the reason (only the unpruned run is offered)."""
        from .pipeline import VIDEO_PRUNING

        return [f"{', '.join(methods)}: {VIDEO_PRUNING} (eval-video runs it without --methods)"] if methods else []

    def runner(self, a: Any):
        """The loaded Sa2VA on its video path (:class:`litelvlm.sa2va.video_runner.Sa2VARunner`)."""
        from .video_runner import Sa2VARunner

        return Sa2VARunner(a)


#: the registered video path (:data:`litelvlm.families.TABLE`)
VIDEO_EVAL = Sa2VAVideoEval()

__all__ = ["BUDGET_READING", "NOTE", "VIDEO_EVAL", "Sa2VAVideoEval"]
