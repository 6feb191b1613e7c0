"""The check of a video folder's files before a run uses them (:func:`check_videos`).

The records the readers of :mod:`litelvlm.video.datasets` give (:mod:`litelvlm.video.records`) load each
frame and annotation when it is asked for; a run that scores whole videos needs every one of them, of one
size. :func:`check_videos` opens every frame and annotation of the given expressions' videos once (the image
header only: cheap) and refuses, as one :class:`~litelvlm.errors.LiteLVLMError` naming the file and the cause:

* a video whose meta file lists no frame;
* a listed frame or annotation that is absent or not an image;
* a frame whose size differs from the video's first frame (the frames of a video are stacked);
* an annotation that is not palette (``P``) or greyscale (``L``), or whose size differs from its frame's;
* for MeViS, an annotation missing from ``mask_dict.json`` or with another frame count.

The studies call it on the videos they will use before they write anything or load a model
(``load_*(..., check_files=True)`` calls it on the whole split).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from ..errors import LiteLVLMError
from .records import PaletteMasks, VideoExpression


def image_header(path: Path, what: str, listed: str) -> tuple[tuple[int, int], str]:
    """((width, height), mode) of an image file from its header; absent or unreadable: a
    :class:`LiteLVLMError` naming ``what`` (``frame``, ``annotation``) and the file (``listed``: what the meta
    file lists it as)."""
    if not path.is_file():
        raise LiteLVLMError(f"{what} {str(path)!r} does not exist, but the meta file lists {listed} "
                            "(a partial download?)")
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except Exception as e:  # not an image, an unknown format, a decompression bomb
        raise LiteLVLMError(f"{what} {str(path)!r} could not be read: {e}") from e


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]} x {size[1]}"


def _check_frames(rec: VideoExpression) -> list[tuple[int, int]]:
    """The size of every listed frame of ``rec``'s video, all one size."""
    if not rec.frames:
        raise LiteLVLMError(f"video {rec.video!r} ({str(rec.frame_dir)!r}) has no frames: its meta file "
                            "lists none")
    sizes = []
    for i in range(len(rec.frames)):
        size, _ = image_header(rec.frame_path(i), "frame", "it")
        if sizes and size != sizes[0]:
            raise LiteLVLMError(f"frame {str(rec.frame_path(i))!r} is {_size(size)} but the first frame of "
                                f"video {rec.video!r}, {str(rec.frame_path(0))!r}, is {_size(sizes[0])}: the "
                                "frames of a video must have one size")
        sizes.append(size)
    return sizes


def _check_palette(rec: VideoExpression, masks: PaletteMasks,
                   sizes: list[tuple[int, int]]) -> None:
    """Every listed frame's annotation PNG: present, palette or greyscale, of its frame's size."""
    for i, name in enumerate(rec.frames):
        path = masks.path(rec, i)
        size, mode = image_header(path, "annotation", f"frame {name!r} of video {rec.video!r}")
        if mode not in ("P", "L"):
            raise LiteLVLMError(f"annotation {str(path)!r} is a mode {mode} image, not a palette PNG of "
                                "object ids")
        if size != sizes[i]:
            raise LiteLVLMError(f"annotation {str(path)!r} is {_size(size)} but its frame "
                                f"{str(rec.frame_path(i))!r} is {_size(sizes[i])}")


def check_videos(records: Iterable[VideoExpression]) -> None:
    """Check every frame and annotation file of ``records``' videos (each video once; header reads only): a
    :class:`LiteLVLMError` naming the first file that is absent, unreadable or of the wrong size or mode."""
    seen: dict[Path, list[tuple[int, int]]] = {}
    for rec in records:
        if rec.frame_dir not in seen:
            seen[rec.frame_dir] = sizes = _check_frames(rec)
            if rec.has_masks and isinstance(rec.masks, PaletteMasks):
                _check_palette(rec, rec.masks, sizes)
        if rec.has_masks and not isinstance(rec.masks, PaletteMasks):
            rec.masks.check(rec)   # MeViS: the expression's annotations in mask_dict.json, one entry a frame
