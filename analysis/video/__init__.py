"""Referring video segmentation with per-frame pruning of VideoGLaMM's CLIP context stream (``eval-video``),
on Ref-DAVIS-17, MeViS and Refer-YouTube-VOS. From code: ``from analysis.video import VideoArgs, run``;
``calibration(a)`` (:func:`analysis.video.compute.calibration`, its module imported on first use: torch) is
the per-video work that ``litelvlm plan`` times: (the loaded runner, the records by video, the runs with the
baseline first, ``work(video, runs)``: ``eval-video``'s own work on one video) for options ``a``."""

from __future__ import annotations

import importlib
from typing import Any

from analysis.video.command import run
from analysis.video.options import VideoArgs

__all__ = ["VideoArgs", "calibration", "run"]


def __getattr__(name: str) -> Any:
    if name != "calibration":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module("analysis.video.compute").calibration
