"""Referring video segmentation with per-frame pruning of VideoGLaMM's CLIP context stream (``eval-video``)."""

from analysis.video.options import VideoArgs, run

__all__ = ["VideoArgs", "run"]
