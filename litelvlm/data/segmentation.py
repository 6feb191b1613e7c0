"""COCO segmentations (polygons, uncompressed and compressed RLE): checked in Python, then decoded with
pycocotools.

pycocotools' C code trusts its input: a NaN or infinite polygon coordinate becomes a huge integer and the
rasteriser allocates without bound (the process is killed), and RLE counts that run past ``height * width``
are written past the end of the mask buffer. :func:`check_segmentation` therefore refuses, before pycocotools
sees them, what it cannot decode: polygons with a coordinate that is not a finite number, a first polygon of
at most 4 numbers (``frPyObjects`` reads a first one of 4 numbers as a box and refuses a shorter one; a later
polygon of fewer than 3 points, or a first one of 5 numbers, decodes to no pixels, as there), or whose
coordinates overflow its rasteriser (:data:`MAX_COORDINATE`, :data:`MAX_BOUNDARY_POINTS`); RLEs whose ``size``
is not the image's, and RLE counts that are negative, not integers, or do not add up to ``height * width``. A
polygon that reaches outside its image is decoded as the official reader decodes it (REFER's
``getMask``/``annToMask``: pycocotools clips it to the image); :func:`polygons_outside` counts such polygons
so that the loaders can say how many there were. A valid segmentation decodes exactly as before (the checks
only refuse).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..switches import MASK_PARTS

#: pycocotools' ``rleFrPoly`` (``maskApi.c``) scales each coordinate by 5 into a C ``int``: a coordinate past
#: this overflows it
MAX_COORDINATE = (2**31 - 1) / 5 - 1
#: ... and walks every point of the 5x upsampled boundary (four ints each): a longer boundary is refused
MAX_BOUNDARY_POINTS = 2**24
#: the largest single RLE count pycocotools stores (``uint``)
MAX_RLE_COUNT = 2**32 - 1



def rle_string_counts(counts: bytes | str) -> list[int]:
    """The run lengths of a compressed RLE string, read as pycocotools' ``rleFrString`` reads them (6-bit
    groups from ``'0'``; from the fourth run on, each is a difference from the run two back); a character
    outside ``'0'..'o'``, a number cut off at the end, or a negative or oversized run is a ``ValueError``."""
    s = counts.encode("utf-8") if isinstance(counts, str) else bytes(counts)
    out: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("its compressed RLE counts end in the middle of a number")
            c = s[p] - 48
            if not 0 <= c < 64:
                raise ValueError(f"its compressed RLE counts hold the byte {s[p]:#04x} at {p}, outside "
                                 "'0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        if not 0 <= x <= MAX_RLE_COUNT:
            raise ValueError(f"its compressed RLE counts decode to a run of {x} (run {len(out)})")
        out.append(x)
    return out


def _int(value: Any) -> int | None:
    """``value`` as an int when it is an integral real number (not a bool), else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def _check_rle(seg: dict, height: int, width: int) -> None:
    if "size" not in seg or "counts" not in seg:
        raise ValueError(f"its RLE has no {'size' if 'size' not in seg else 'counts'!r}")
    size = seg["size"]
    dims = [_int(v) for v in size] if isinstance(size, (list, tuple)) and len(size) == 2 else None
    if dims is None or None in dims:
        raise ValueError(f"its RLE size is {size!r}, not [height, width]")
    if dims != [height, width]:
        raise ValueError(f"its RLE decodes to a {dims[1]} x {dims[0]} mask but its image is {width} x "
                         f"{height} (width x height)")
    counts = seg["counts"]
    if isinstance(counts, (str, bytes)):
        runs = rle_string_counts(counts)
    elif isinstance(counts, list):
        runs = [_int(c) for c in counts]
        bad = next((i for i, c in enumerate(runs) if c is None or not 0 <= c <= MAX_RLE_COUNT), None)
        if bad is not None:
            raise ValueError(f"its RLE count {bad} is {counts[bad]!r}, not a non-negative integer")
    else:
        raise ValueError(f"its RLE counts are a {type(counts).__name__}, neither a list nor a string")
    if sum(runs) != height * width:
        raise ValueError(f"its RLE counts add up to {sum(runs)} pixels, not {height} x {width} = "
                         f"{height * width}")


def _check_polygons(seg: list, height: int, width: int) -> None:
    for i, poly in enumerate(seg):
        if not isinstance(poly, (list, tuple)):
            raise ValueError(f"its polygon {i} is a {type(poly).__name__}, not a list of coordinates")
        try:
            xy = np.asarray(poly, dtype=np.float64)
        except (TypeError, ValueError):
            xy = None
        if xy is None or xy.ndim != 1 or any(isinstance(v, (bool, str, bytes)) for v in poly):
            raise ValueError(f"its polygon {i} is not a flat list of numbers")
        if not np.isfinite(xy).all():
            j = int(np.flatnonzero(~np.isfinite(xy))[0])
            raise ValueError(f"its polygon {i} has a non-finite coordinate ({xy[j]} at position {j})")
        if i == 0 and len(xy) <= 4:
            raise ValueError(f"its first polygon has {len(xy)} coordinate(s), fewer than 3 points "
                             "(pycocotools' frPyObjects reads a first polygon of 4 numbers as a box and "
                             "decodes none from fewer)")
        big = np.abs(xy) > MAX_COORDINATE
        if big.any():
            j = int(np.flatnonzero(big)[0])
            raise ValueError(f"its polygon {i} has the coordinate {xy[j]:g} (position {j}), past the "
                             f"{MAX_COORDINATE:.0f} that pycocotools' rasteriser can hold")
        points = _boundary_points(xy)
        if points > MAX_BOUNDARY_POINTS:
            raise ValueError(f"its polygon {i} has a boundary of {points} upsampled points, past the "
                             f"{MAX_BOUNDARY_POINTS} this project lets pycocotools' rasteriser allocate")


def _boundary_points(xy: np.ndarray) -> int:
    """The number of boundary points pycocotools' ``rleFrPoly`` walks for one polygon (``maskApi.c``: vertices
    scaled by 5 and rounded by ``(int)(v + .5)``, then max(|dx|, |dy|) + 1 points per edge)."""
    k = len(xy) // 2
    x = np.trunc(5 * xy[0:2 * k:2] + 0.5).astype(np.int64)
    y = np.trunc(5 * xy[1:2 * k:2] + 0.5).astype(np.int64)
    return int((np.maximum(np.abs(x - np.roll(x, -1)), np.abs(y - np.roll(y, -1))) + 1).sum())


def polygons_outside(segmentation: Any, height: int, width: int) -> int:
    """How many polygons of ``segmentation`` (0 for an RLE) have a vertex outside the ``width`` x ``height``
    image (x in 0..width, y in 0..height: COCO's polygons run along the border); pycocotools clips them to the
    image."""
    if not isinstance(segmentation, list):
        return 0
    count = 0
    for poly in segmentation:
        xy = np.asarray(poly, dtype=np.float64)
        xs, ys = xy[0:len(xy) - len(xy) % 2:2], xy[1::2]
        count += bool((xs < 0).any() or (xs > width).any() or (ys < 0).any() or (ys > height).any())
    return count


def check_segmentation(segmentation: Any, height: int, width: int) -> None:
    """Refuse, with a ``ValueError`` saying why, a segmentation that pycocotools must not see (see the module
    docstring); an empty polygon list passes (an empty mask)."""
    if _int(height) is None or _int(width) is None or height < 1 or width < 1:
        raise ValueError(f"its image size {width!r} x {height!r} (width x height) is not two positive "
                         "integers")
    if segmentation is None:
        raise ValueError("record has no segmentation")
    if isinstance(segmentation, list):
        _check_polygons(segmentation, height, width)
    elif isinstance(segmentation, dict):
        _check_rle(segmentation, height, width)
    else:
        raise ValueError(f"unknown segmentation format {type(segmentation).__name__}")


def decode_segmentation(segmentation: Any, height: int, width: int, parts: str = "union") -> np.ndarray:
    """Decode a COCO segmentation (polygon list, uncompressed or compressed RLE) to an (H, W) mask, after
    :func:`check_segmentation` (a ``ValueError`` for one that cannot be decoded).

    ``parts="union"``: a bool mask, the polygons merged with ``pycocotools.mask.merge`` (overlapping
    parts stay 1). ``parts="sum"``: uint8 part counts, as sejong-rcv/LiteLVLM @5896153
    ``dataset/utils/refcoco_refer.py`` L312-320 (``getMask``) sums the decoded parts.
    """
    if parts not in MASK_PARTS:   # a programming error, not the user's input
        raise ValueError(f"parts must be one of {', '.join(MASK_PARTS)}; got {parts!r}")
    check_segmentation(segmentation, height, width)
    if isinstance(segmentation, list):
        polys = [p for p in segmentation if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), dtype=bool if parts == "union" else np.uint8)
        rles = mask_utils.frPyObjects(polys, height, width)
        if parts == "sum":
            return mask_utils.decode(rles).sum(axis=2).astype(np.uint8)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode()
    m = mask_utils.decode(rle)
    if m.ndim == 3:  # defensive: a list of RLEs that escaped merging
        m = m.sum(axis=2) if parts == "sum" else m.any(axis=2)
    return m.astype(bool) if parts == "union" else m.astype(np.uint8)
