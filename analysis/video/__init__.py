"""Referring video segmentation with per-frame pruning of VideoGLaMM's CLIP context stream (``eval-video``), on
Ref-DAVIS-17, MeViS and Refer-YouTube-VOS. From code: ``from analysis.video import VideoArgs, run``;
:func:`calibration` is the per-video work that ``litelvlm plan`` times."""

from __future__ import annotations

from typing import Any

from analysis.video.command import run
from analysis.video.compute import calibration as setup
from analysis.video.options import VideoArgs

__all__ = ["VideoArgs", "calibration", "run"]


def calibration(a: VideoArgs) -> tuple[Any, dict, list, Any]:
    """(the loaded runner, the records by video, the runs with the baseline first, ``work(video, runs)``: ``eval-video``'s
    own work on one video) for options ``a``; imports the heavy modules when called."""
    return setup(a)
