"""Referring video segmentation with per-frame pruning of VideoGLaMM's CLIP context stream (``eval-video``)."""

from analysis.video.command import run
from analysis.video.options import VideoArgs

__all__ = ["VideoArgs", "run"]
