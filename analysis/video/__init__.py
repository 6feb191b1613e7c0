"""Referring video segmentation with per-frame pruning of VideoGLaMM's CLIP context stream (``eval-video``),
on Ref-DAVIS-17, MeViS and Refer-YouTube-VOS. From code: ``from analysis.video import VideoArgs, run``;
``calibration(a)`` (:func:`analysis.video.compute.calibration`, its module imported on first use: torch) is
the per-video work that ``litelvlm plan`` times: (the loaded runner, the records by video, the runs with the
baseline first, ``work(video, runs)``: ``eval-video``'s own work on one video) for options ``a``."""

from __future__ import annotations

from analysis.video.command import run
from analysis.video.options import VideoArgs
from litelvlm.lazy import lazy_exports

__all__ = ["VideoArgs", "calibration", "run"]

__getattr__ = lazy_exports(__name__, {"calibration": "analysis.video.compute"})
