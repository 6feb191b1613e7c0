"""A referring expression of a video as the readers give it (:class:`VideoExpression`), and where its
ground-truth masks come from (:class:`MaskSource`: palette PNGs, MeViS's RLE table, or none public).

The readers of the released layouts are in :mod:`litelvlm.video.datasets`; details: docs/video.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.refer import decode_segmentation, open_rgb
from ..errors import LiteLVLMError
from .meta import read_json


class MaskSource:
    """Where a split's ground truth lives; ``mask(rec, i)`` reads frame ``i``'s object ids' union."""

    def mask(self, rec: VideoExpression, index: int) -> np.ndarray:
        """The (H, W) bool mask of ``rec``'s objects in its frame ``index``."""
        raise NotImplementedError

    def check(self, rec: VideoExpression) -> None:
        """Raise :class:`LiteLVLMError` naming the first of ``rec``'s annotation files that is absent."""


class NoMasks(MaskSource):
    """A split whose ground truth is on an evaluation server."""

    def mask(self, rec: VideoExpression, index: int) -> np.ndarray:
        """Always a :class:`LiteLVLMError`: the split has no public masks."""
        raise LiteLVLMError(f"{rec.dataset} split {rec.split!r} has no public ground-truth masks (they are "
                            f"held by its evaluation server); video {rec.video!r}, expression {rec.exp_id!r}")


@dataclass(frozen=True)
class PaletteMasks(MaskSource):
    """Palette PNGs ``<folder>/<video>/<frame>.png`` whose index is the object id (Ref-DAVIS, YouTube-VOS)."""

    folder: Path

    def path(self, rec: VideoExpression, index: int) -> Path:
        """The annotation PNG of ``rec``'s frame ``index``."""
        return self.folder / rec.video / f"{rec.frames[index]}.png"

    def mask(self, rec: VideoExpression, index: int) -> np.ndarray:
        """The pixels whose object id is one of ``rec.obj_ids``."""
        return np.isin(read_object_ids(self.path(rec, index)), rec.obj_ids)

    def check(self, rec: VideoExpression) -> None:
        """Every listed frame's annotation PNG exists."""
        for i in range(len(rec.frames)):
            if not self.path(rec, i).is_file():
                raise LiteLVLMError(f"annotation {str(self.path(rec, i))!r} does not exist, but the meta "
                                    f"file lists frame {rec.frames[i]!r} of video {rec.video!r} (a partial "
                                    "download?)")


@dataclass(frozen=True)
class RLEMasks(MaskSource):
    """MeViS ``mask_dict.json``: ``{anno_id: [COCO RLE or null, one per frame]}``, loaded on first use."""

    path: Path
    _table: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    def table(self) -> dict[str, list]:
        """The loaded ``mask_dict.json`` (read once, shared by the split's records)."""
        if not self._table:
            data = read_json(self.path, "mask file")
            if not isinstance(data, dict):
                raise LiteLVLMError(f"mask file {str(self.path)!r} is not a {{anno_id: [RLE per frame]}} "
                                    "mapping")
            self._table.update(data)
        return self._table

    def rles(self, rec: VideoExpression, anno_id: str) -> list:
        """One annotation's per-frame RLEs, checked against ``rec``'s frame count."""
        seq = self.table().get(anno_id)
        if not isinstance(seq, list):
            raise LiteLVLMError(f"mask file {str(self.path)!r} has no annotation {anno_id!r} (video "
                                f"{rec.video!r}, expression {rec.exp_id!r})")
        if len(seq) != len(rec.frames):
            raise LiteLVLMError(f"mask file {str(self.path)!r}: annotation {anno_id!r} has {len(seq)} frames "
                                f"but video {rec.video!r} lists {len(rec.frames)}")
        return seq

    def mask(self, rec: VideoExpression, index: int) -> np.ndarray:
        """The union of the expression's annotations in frame ``index`` (empty where all are null)."""
        width, height = rec.frame_size(index)
        out = np.zeros((height, width), dtype=bool)
        for anno_id in rec.anno_ids:
            rle = self.rles(rec, anno_id)[index]
            if not rle:
                continue
            try:
                part = decode_segmentation(rle, height, width)
            except Exception as e:  # garbage counts, a wrong type
                raise LiteLVLMError(f"mask file {str(self.path)!r}: annotation {anno_id!r}, frame {index} "
                                    f"cannot be decoded: {e}") from e
            if part.shape != out.shape:
                raise LiteLVLMError(f"mask file {str(self.path)!r}: annotation {anno_id!r}, frame {index} is "
                                    f"{part.shape[1]} x {part.shape[0]} but its frame is {width} x {height}")
            out |= part
        return out

    def check(self, rec: VideoExpression) -> None:
        """Every annotation of ``rec`` is in the mask file, with one entry per frame."""
        for anno_id in rec.anno_ids:
            self.rles(rec, anno_id)


@dataclass(frozen=True)
class VideoExpression:
    """One referring expression of a video, with its frames and (where public) masks loaded lazily."""

    dataset: str
    split: str
    video: str
    exp_id: str
    sentence: str
    #: the referred objects' ids (``()`` where a split without masks gives none)
    obj_ids: tuple[int, ...]
    frames: tuple[str, ...]
    #: ``<split>/JPEGImages/<video>``
    frame_dir: Path
    has_masks: bool
    #: MeViS: the keys of ``mask_dict.json`` whose union is the ground truth
    anno_ids: tuple[str, ...] = ()
    masks: MaskSource = field(default_factory=NoMasks, repr=False, compare=False)

    def index(self, frame: int | str) -> int:
        """The position of ``frame`` (an index, negative from the end, or a frame name) in ``frames``."""
        if isinstance(frame, str):
            if frame not in self.frames:
                raise LiteLVLMError(f"video {self.video!r} has no frame {frame!r}")
            return self.frames.index(frame)
        if not -len(self.frames) <= frame < len(self.frames):
            raise LiteLVLMError(f"video {self.video!r} has {len(self.frames)} frames; no frame {frame}")
        return frame % len(self.frames)

    def frame_path(self, frame: int | str) -> Path:
        """The JPEG file of a frame (index or name)."""
        return self.frame_dir / f"{self.frames[self.index(frame)]}.jpg"

    def frame(self, frame: int | str) -> Image.Image:
        """A frame as RGB; a missing or unreadable file is a :class:`LiteLVLMError` naming it."""
        return open_rgb(self.frame_path(frame), exif_transpose=False)

    def frame_size(self, frame: int | str) -> tuple[int, int]:
        """A frame's (width, height), from its file header."""
        path = self.frame_path(frame)
        if not path.is_file():
            raise LiteLVLMError(f"image {str(path)!r} does not exist")
        try:
            with Image.open(path) as im:
                return im.size
        except Exception as e:  # not an image
            raise LiteLVLMError(f"image {str(path)!r} could not be read: {e}") from e

    def mask(self, frame: int | str) -> np.ndarray:
        """The ground-truth (H, W) bool mask of a frame: the union over ``obj_ids`` (``anno_ids`` on MeViS),
        of the frame's size; a split without public masks is a :class:`LiteLVLMError`."""
        i = self.index(frame)
        m = self.masks.mask(self, i)
        width, height = self.frame_size(i)
        if m.shape != (height, width):
            raise LiteLVLMError(f"the annotation of frame {self.frames[i]!r} of video {self.video!r} is "
                                f"{m.shape[1]} x {m.shape[0]} but the frame {str(self.frame_path(i))!r} is "
                                f"{width} x {height}")
        return m


def read_object_ids(path: str | Path) -> np.ndarray:
    """The (H, W) uint8 object ids of a palette (``P``) or greyscale (``L``) annotation PNG."""
    path = Path(path)
    if not path.is_file():
        raise LiteLVLMError(f"annotation {str(path)!r} does not exist (a partial download?)")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            ids = np.array(im) if mode in ("P", "L") else None
    except Exception as e:  # truncated or not an image
        raise LiteLVLMError(f"annotation {str(path)!r} could not be read: {e}") from e
    if ids is None:
        raise LiteLVLMError(f"annotation {str(path)!r} is a mode {mode} image, not a palette PNG of object "
                            "ids")
    return ids
