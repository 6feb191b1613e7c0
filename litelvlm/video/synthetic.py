"""This project's own synthetic referring-video set, for offline tests and demos: moving toy shapes in the
Ref-DAVIS-17 layout.

:func:`write_synthetic_videos` draws small videos of coloured squares, circles and triangles (one to three
per video, each in a colour of its own, with the colour words and values of the image toy set
``litelvlm.toy.scenes``) moving left, right, up or down across a static textured background, and writes
them as Ref-DAVIS-17 is laid out after ReferFormer's conversion: JPEG frames, palette-PNG annotations
whose index is the object id (1, 2, 3; 0 the background; the DAVIS / PASCAL VOC palette),
``meta_expressions/<split>/meta_expressions.json`` and ``<split>/meta.json`` (each object's shape as its
category), so :func:`litelvlm.video.datasets.load_ref_davis` reads it back. Each object has four
expressions, in Ref-DAVIS's order (exp ids ``4k .. 4k+3`` refer to object ``k+1``: a first-frame and a
full-video sentence by each of two "annotators"), naming its colour and shape with its place ("the red
circle at the top") or its motion ("the red circle moving left"). Each object moves along a lane of its
own (objects never overlap), so every object is wholly visible in every frame. It is not a benchmark: the
sentences are templates and the shapes are told apart by colour alone. The files are byte-identical for
the same arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import LiteLVLMError
from ..toy.scenes import COLOURS  # the image toy set's colour words and RGB values (saturated)

SHAPES = ("square", "circle", "triangle")
#: motion word -> unit step (x, y) in image coordinates (y down)
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
#: number of lanes -> the place words of each lane, for lanes stacked vertically / side by side
PLACES = {
    "rows": {1: ("in the middle",), 2: ("at the top", "at the bottom"),
             3: ("at the top", "in the middle", "at the bottom")},
    "columns": {1: ("in the middle",), 2: ("on the left", "on the right"),
                3: ("on the left", "in the middle", "on the right")},
}


@dataclass(frozen=True)
class ToyObject:
    """One moving shape: its id in the annotations, look, lane place, size and straight-line path."""

    obj_id: int
    colour: str
    shape: str
    direction: str
    place: str
    size: int
    start: tuple[float, float]
    step: tuple[float, float]

    def centre(self, t: int) -> tuple[float, float]:
        """The shape's centre (x, y) in frame ``t``."""
        return self.start[0] + t * self.step[0], self.start[1] + t * self.step[1]

    def region(self, t: int, width: int, height: int) -> np.ndarray:
        """The (H, W) bool pixels the shape covers in frame ``t`` (pixel centres inside the shape)."""
        cx, cy = self.centre(t)
        ys, xs = np.mgrid[0:height, 0:width] + 0.5
        half = self.size / 2
        if self.shape == "square":
            return (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
        if self.shape == "circle":
            return (xs - cx) ** 2 + (ys - cy) ** 2 <= half ** 2
        top = cy - half  # an upright isosceles triangle: apex on top, base as wide as it is tall
        return (ys >= top) & (ys <= cy + half) & (np.abs(xs - cx) <= (ys - top) / 2)

    def sentences(self) -> tuple[str, str, str, str]:
        """Ref-DAVIS's four: annotator 1 first-frame, full-video; annotator 2 first-frame, full-video."""
        look = f"{self.colour} {self.shape}"
        return (f"the {look} {self.place}", f"the {look} moving {self.direction}",
                f"the {self.shape} {self.place} that is {self.colour}", f"the {look} going {self.direction}")


def plan_video(rng: np.random.Generator, frames: int, width: int, height: int) -> list[ToyObject]:
    """One to three objects, each in its own lane across the direction they all move along."""
    n = int(rng.integers(1, 4))
    horizontal = bool(rng.integers(0, 2))  # move left/right in rows, or up/down in columns
    main, cross = (width, height) if horizontal else (height, width)
    lane = cross / n
    size = int(max(6, min(0.7 * lane, 0.3 * main)))
    colours = [list(COLOURS)[i] for i in rng.permutation(len(COLOURS))[:n]]
    places = PLACES["rows" if horizontal else "columns"][n]
    objects = []
    for k in range(n):
        sign = 1 if rng.integers(0, 2) else -1
        travel = (main - size - 4) * float(rng.uniform(0.4, 0.9))
        lo = 2 + size / 2
        first = float(rng.uniform(lo, main - lo - travel))
        along = first if sign > 0 else main - first
        across = (k + 0.5) * lane + float(rng.uniform(-0.1, 0.1)) * (lane - size)
        step = sign * travel / max(frames - 1, 1)
        direction = ("right" if sign > 0 else "left") if horizontal else ("down" if sign > 0 else "up")
        objects.append(ToyObject(
            obj_id=k + 1, colour=colours[k], shape=SHAPES[int(rng.integers(0, len(SHAPES)))],
            direction=direction,
            place=places[k], size=size, start=(along, across) if horizontal else (across, along),
            step=(step, 0.0) if horizontal else (0.0, step)))
    return objects


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static muted texture (H, W, 3) uint8: smooth colour blobs, diagonal stripes and pixel noise."""
    coarse = rng.uniform(70, 170, size=(4, 5, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR),
                        dtype=np.float64)
    ys, xs = np.mgrid[0:height, 0:width]
    period = float(rng.uniform(6, 14))
    stripes = 12 * np.sin(2 * np.pi * (xs + ys) / period)[..., None]
    noise = rng.normal(0, 6, size=(height, width, 3))
    return np.clip(smooth + stripes + noise, 0, 255).astype(np.uint8)


def davis_palette() -> list[int]:
    """The 256-colour DAVIS / PASCAL VOC palette (index 1 dark red, 2 dark green, ...), flat RGB."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):  # bit j of the index's three low bits goes to bit 7 - j of r, g, b
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _write_video(folder: Path, split: str, name: str, objects: list[ToyObject], back: np.ndarray,
                 frames: int) -> list[str]:
    """Write one video's JPEG frames and palette annotations; return its frame names."""
    height, width = back.shape[:2]
    image_dir = folder / split / "JPEGImages" / name
    ann_dir = folder / split / "Annotations" / name
    image_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    palette = davis_palette()
    names = [f"{t:05d}" for t in range(frames)]
    for t, frame in enumerate(names):
        pixels = back.copy()
        ids = np.zeros((height, width), dtype=np.uint8)
        for obj in objects:
            region = obj.region(t, width, height)
            pixels[region] = COLOURS[obj.colour]
            ids[region] = obj.obj_id
        Image.fromarray(pixels).save(image_dir / f"{frame}.jpg", quality=92)
        ann = Image.fromarray(ids)  # mode L; the palette makes it P, the values kept as indices
        ann.putpalette(palette)
        ann.save(ann_dir / f"{frame}.png")
    return names


def write_synthetic_videos(folder: str | Path, videos: int = 3, frames: int = 8,
                           size: tuple[int, int] = (128, 96), seed: int = 0, split: str = "valid") -> Path:
    """Write ``videos`` toy videos of ``frames`` frames of ``size`` (W, H) in the Ref-DAVIS-17 layout under
    ``folder`` (see the module docstring); deterministic in ``seed``. Returns the folder."""
    width, height = size
    if videos < 1 or frames < 2 or min(width, height) < 32:
        raise LiteLVLMError("synthetic videos need videos >= 1, frames >= 2 and W, H >= 32; got "
                            f"videos={videos}, frames={frames}, size={size}")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    expressions, categories = {}, {}
    for v in range(videos):
        name = f"shapes-{v:03d}"
        objects = plan_video(rng, frames, width, height)
        names = _write_video(folder, split, name, objects, background(rng, width, height), frames)
        sentences = [(obj, s) for obj in objects for s in obj.sentences()]
        expressions[name] = {"expressions": {str(i): {"exp": s, "obj_id": str(obj.obj_id)}
                                             for i, (obj, s) in enumerate(sentences)}, "frames": names}
        categories[name] = {"objects": {str(obj.obj_id): {"category": obj.shape} for obj in objects}}
    meta_dir = folder / "meta_expressions" / split
    meta_dir.mkdir(parents=True, exist_ok=True)
    (meta_dir / "meta_expressions.json").write_text(json.dumps({"videos": expressions}, indent=1) + "\n")
    (folder / split / "meta.json").write_text(json.dumps({"videos": categories}, indent=1) + "\n")
    return folder
