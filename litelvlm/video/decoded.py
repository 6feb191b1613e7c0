"""One video's frames decoded ahead of the model (this project's loader, as :mod:`litelvlm.data.prefetch` is
for images): ``eval-video`` decodes the next video's frames on a worker thread while the model works on the
current one, and its runner reads them through :func:`frames_of`. The images are those of
:meth:`~litelvlm.video.records.VideoExpression.frame`, read once each: only when they are decoded changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .records import VideoExpression


@dataclass(frozen=True)
class DecodedVideo:
    """Every frame of one video, decoded, in the order of its records' ``frames``."""

    video: str
    frame_dir: Path
    frames: tuple[str, ...]
    images: tuple[Image.Image, ...]

    def frame(self, frame: int) -> Image.Image:
        """Frame ``frame`` (an index) as RGB, as its record's ``frame`` gives it."""
        return self.images[frame]


def decode_video(rec: VideoExpression) -> DecodedVideo:
    """Decode every frame of ``rec``'s video (a missing or unreadable frame raises the record's error)."""
    images = tuple(rec.frame(i) for i in range(len(rec.frames)))
    return DecodedVideo(rec.video, rec.frame_dir, rec.frames, images)


def frames_of(rec: VideoExpression, decoded: DecodedVideo | None) -> DecodedVideo | VideoExpression:
    """Where ``rec``'s frames are read: ``decoded`` when it holds ``rec``'s video, else ``rec`` itself (each
    frame decoded when it is read)."""
    if decoded is not None and (decoded.video, decoded.frame_dir, decoded.frames) == (
            rec.video, rec.frame_dir, rec.frames):
        return decoded
    return rec


__all__ = ["DecodedVideo", "decode_video", "frames_of"]
