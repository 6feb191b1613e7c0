"""Seeded synthetic scenes: coloured shapes on textured backgrounds, with exact instance masks
and referring expressions built from each object's attributes.

A scene places 3-5 objects, one per cell of a 3x3 layout (so "at the top left" is always
well defined), each with a shape, a colour and a size class. Big objects spill into the
neighbouring cells and occlude each other; every object keeps at least half of its area
visible, and the centroid of its visible pixels stays in its own cell. Masks are the exact visible pixels: the
image is painted from the same masks.

Scene ``i`` of a set with seed ``s`` depends only on ``(s, i)``, so any subset can be
regenerated on its own, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 230), "yellow": (240, 215, 30),
    "purple": (140, 50, 190), "orange": (250, 135, 20), "cyan": (30, 205, 215),
}
#: shapes chosen to stay distinct at a 32-pixel patch (a hexagon is hard to tell from a circle there)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
SIZES: tuple[str, ...] = ("small", "big")
#: radius as a fraction of the image side, per size class (disjoint ranges: size words are unambiguous)
SIZE_RADIUS: dict[str, tuple[float, float]] = {"small": (0.065, 0.09), "big": (0.14, 0.18)}
ROWS: tuple[str, ...] = ("top", "middle", "bottom")
COLS: tuple[str, ...] = ("left", "center", "right")
#: the phrase for each 3x3 cell (row, col)
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "at the top left", (0, 1): "at the top", (0, 2): "at the top right",
    (1, 0): "on the left", (1, 1): "in the center", (1, 2): "on the right",
    (2, 0): "at the bottom left", (2, 1): "at the bottom", (2, 2): "at the bottom right",
}
CELLS: tuple[tuple[int, int], ...] = tuple(POSITIONS)
#: the attributes of an object, in the order of an :class:`Expression`'s fields
ATTRIBUTES = ("size", "colour", "shape", "cell")


@dataclass(frozen=True)
class SceneObject:
    """One shape: its attributes, its geometry in pixels, and its exact visible mask."""

    shape: str
    colour: str
    size: str
    cell: tuple[int, int]
    center: tuple[float, float]  # (x, y) in pixels
    radius: float
    angle: float
    mask: np.ndarray = field(repr=False)  # (H, W) bool, visible pixels only

    def attributes(self) -> tuple[str, str, str, tuple[int, int]]:
        return (self.size, self.colour, self.shape, self.cell)


@dataclass(frozen=True)
class Expression:
    """A referring expression as structured attributes (``None`` = not mentioned); shape is the noun."""

    shape: str
    colour: str | None = None
    size: str | None = None
    cell: tuple[int, int] | None = None

    @property
    def text(self) -> str:
        words = ["the"] + [w for w in (self.size, self.colour) if w] + [self.shape]
        if self.cell is not None:
            words.append(POSITIONS[self.cell])
        return " ".join(words)

    def matches(self, obj: SceneObject) -> bool:
        """Whether ``obj`` has every attribute this expression mentions."""
        return (obj.shape == self.shape and self.colour in (None, obj.colour)
                and self.size in (None, obj.size) and self.cell in (None, obj.cell))

    def code(self) -> tuple[int, int, int, int]:
        """Integer code (size, colour, shape, cell), -1 where unmentioned; for vectorised truth tests."""
        return (SIZES.index(self.size) if self.size else -1,
                list(COLOURS).index(self.colour) if self.colour else -1,
                SHAPES.index(self.shape), CELLS.index(self.cell) if self.cell else -1)


@dataclass(frozen=True)
class Scene:
    """An image with its objects (back to front) and their exact visible masks."""

    image: np.ndarray = field(repr=False)  # (H, W, 3) uint8
    objects: tuple[SceneObject, ...]
    seed: tuple[int, int]

    def pil(self) -> Image.Image:
        return Image.fromarray(self.image)

    def refers_to(self, expr: Expression) -> list[int]:
        """Indices of the objects that ``expr`` describes."""
        return [i for i, o in enumerate(self.objects) if expr.matches(o)]

    def is_true(self, expr: Expression) -> bool:
        return bool(self.refers_to(expr))

    def object_codes(self) -> np.ndarray:
        """(n, 4) integer attributes (size, colour, shape, cell) of the objects."""
        return np.array([Expression(o.shape, o.colour, o.size, o.cell).code() for o in self.objects])


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        # tilted by at most 15 degrees, so that a square never looks like a diamond
        k, r = 4, r * 1.2
        angle = np.pi / 4 + np.deg2rad(15) * ((angle % (2 * np.pi)) / np.pi - 1)
    elif shape == "diamond":
        k, r = 4, r * 1.2
        angle = 0.0
    elif shape == "triangle":
        k, r = 3, r * 1.3
        angle = -np.pi / 2
    elif shape == "cross":
        # an upright plus sign (tilted by at most 15 degrees): arms of half-width 0.36 of its reach
        reach, w = r * 1.25, r * 1.25 * 0.36
        tilt = np.deg2rad(15) * ((angle % (2 * np.pi)) / np.pi - 1)
        pts = np.array([(w, reach), (w, w), (reach, w), (reach, -w), (w, -w), (w, -reach),
                        (-w, -reach), (-w, -w), (-reach, -w), (-reach, w), (-w, w), (-w, reach)])
        c, s = np.cos(tilt), np.sin(tilt)
        return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]
    elif shape == "star":
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        rr = np.where(np.arange(10) % 2 == 0, r * 1.3, r * 0.55)
        return list(zip(cx + rr * np.cos(t), cy + rr * np.sin(t)))
    else:
        raise ValueError(shape)
    t = angle + np.arange(k) * 2 * np.pi / k
    return list(zip(cx + r * np.cos(t), cy + r * np.sin(t)))


def shape_mask(shape: str, center: tuple[float, float], radius: float, angle: float,
               size: int) -> np.ndarray:
    """The full (unoccluded) pixel mask of a shape on a ``size`` x ``size`` canvas."""
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = center
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, angle), fill=1)
    return np.array(canvas, dtype=bool)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A desaturated textured background: stripes, checkerboard, blobs or noise over a gradient."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(95, 165)
    tint = rng.uniform(-12, 12, size=3)
    g = rng.uniform(-25, 25) * (xx * np.cos(a := rng.uniform(0, 2 * np.pi)) + yy * np.sin(a))
    kind = rng.integers(4)
    amp = rng.uniform(8, 22)
    if kind == 0:  # stripes
        f, th = rng.uniform(4, 12), rng.uniform(0, np.pi)
        tex = np.sign(np.sin(2 * np.pi * f * (xx * np.cos(th) + yy * np.sin(th))))
    elif kind == 1:  # checkerboard
        f = int(rng.integers(3, 10))
        tex = ((np.floor(xx * f) + np.floor(yy * f)) % 2) * 2 - 1
    elif kind == 2:  # smooth blobs
        tex = np.zeros_like(xx)
        for _ in range(4):
            bx, by, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.3)
            tex += np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * s * s)) * rng.choice([-1, 1])
    else:  # noise
        tex = rng.normal(0, 0.6, size=xx.shape)
    grey = base + g + amp * tex
    img = grey[..., None] + tint[None, None]
    return np.clip(img + rng.normal(0, 3, size=img.shape), 0, 255)


def _centroid_cell(mask: np.ndarray, size: int) -> tuple[int, int] | None:
    """The 3x3 cell holding the centroid of ``mask`` (None when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return (min(2, int(ys.mean() * 3 // size)), min(2, int(xs.mean() * 3 // size)))


def make_scene(seed: int, index: int, size: int = 224, n_objects: tuple[int, int] = (3, 5),
               min_visible: float = 0.5) -> Scene:
    """Scene ``index`` of the set with ``seed``: 3-5 shapes in distinct cells, exact visible masks."""
    rng = np.random.default_rng([int(seed), int(index)])
    img = _background(rng, size)
    n = int(rng.integers(n_objects[0], n_objects[1] + 1))
    # a small per-scene palette of shapes and colours, so that objects share attributes and
    # referring to one needs colour, size or position words
    shapes = [SHAPES[i] for i in rng.choice(len(SHAPES), size=int(rng.integers(1, 4)), replace=False)]
    colours = [list(COLOURS)[i]
               for i in rng.choice(len(COLOURS), size=int(rng.integers(2, 5)), replace=False)]
    for _attempt in range(50):
        cells = [CELLS[i] for i in rng.choice(len(CELLS), size=n, replace=False)]
        specs = []
        for cell in cells:
            sz = SIZES[int(rng.integers(len(SIZES)))]
            r = rng.uniform(*SIZE_RADIUS[sz]) * size
            cx = (cell[1] + 0.5 + rng.uniform(-0.13, 0.13)) * size / 3
            cy = (cell[0] + 0.5 + rng.uniform(-0.13, 0.13)) * size / 3
            specs.append((shapes[int(rng.integers(len(shapes)))], colours[int(rng.integers(len(colours)))],
                          sz, cell, (float(cx), float(cy)), float(r), float(rng.uniform(0, 2 * np.pi))))
        full = [shape_mask(s[0], s[4], s[5], s[6], size) for s in specs]
        visible = []
        for i, m in enumerate(full):
            above = np.zeros_like(m)
            for later in full[i + 1:]:
                above |= later
            visible.append(m & ~above)
        if all(v.sum() >= min_visible * max(f.sum(), 1) and _centroid_cell(v, size) == spec[3]
               for v, f, spec in zip(visible, full, specs)):
            break
    else:  # pragma: no cover - with these sizes a valid layout is found within a few tries
        raise RuntimeError(f"could not lay out scene ({seed}, {index})")
    objects = []
    for spec, m in zip(specs, visible):
        shade = rng.uniform(0.9, 1.05)
        rgb = np.clip(np.array(COLOURS[spec[1]], dtype=np.float32) * shade, 0, 255)
        img[m] = rgb + rng.normal(0, 4, size=(int(m.sum()), 3))
        objects.append(SceneObject(*spec, mask=m))
    return Scene(image=np.clip(img, 0, 255).astype(np.uint8), objects=tuple(objects), seed=(seed, index))


# -- referring expressions ----------------------------------------------------------------------
_SUBSETS: tuple[tuple[str, ...], ...] = (
    (), ("colour",), ("size",), ("cell",), ("size", "colour"), ("colour", "cell"), ("size", "cell"),
    ("size", "colour", "cell"),
)


def _expr(obj: SceneObject, attrs: tuple[str, ...]) -> Expression:
    return Expression(obj.shape, obj.colour if "colour" in attrs else None,
                      obj.size if "size" in attrs else None, obj.cell if "cell" in attrs else None)


def referring_expressions(scene: Scene, target: int) -> list[Expression]:
    """Every expression (shape noun + an attribute subset) that picks out exactly ``target``,
    shortest first; the first ones are the minimal referring expressions."""
    obj = scene.objects[target]
    out = [e for a in _SUBSETS if scene.refers_to(e := _expr(obj, a)) == [target]]
    return sorted(out, key=lambda e: sum(x is not None for x in (e.colour, e.size, e.cell)))


def sample_expression(scene: Scene, target: int, rng: np.random.Generator,
                      redundant: float = 0.3) -> Expression:
    """A random unique referring expression for ``target``: minimal, or (with probability
    ``redundant``) one with extra attributes."""
    exprs = referring_expressions(scene, target)
    k = sum(x is not None for x in (exprs[0].colour, exprs[0].size, exprs[0].cell))
    minimal = [e for e in exprs if sum(x is not None for x in (e.colour, e.size, e.cell)) == k]
    pool = exprs if rng.random() < redundant else minimal
    return pool[int(rng.integers(len(pool)))]


def counterfactuals(scene: Scene, expr: Expression, rng: np.random.Generator, n: int) -> list[Expression]:
    """Up to ``n`` distinct expressions that differ from ``expr`` in one or two attributes
    and describe NO object of ``scene`` (hard negatives from the same scene)."""
    colours = list(COLOURS)
    out: list[Expression] = []
    seen = {expr}
    for _ in range(40 * n):
        if len(out) >= n:
            break
        e = expr
        for _k in range(1 + int(rng.random() < 0.3)):
            slots = ["shape", "colour"] + (["size"] if e.size else []) + (["cell"] if e.cell else [])
            slot = slots[int(rng.integers(len(slots)))]
            if slot == "shape":
                e = Expression(SHAPES[int(rng.integers(len(SHAPES)))], e.colour, e.size, e.cell)
            elif slot == "colour":
                e = Expression(e.shape, colours[int(rng.integers(len(colours)))], e.size, e.cell)
            elif slot == "size":
                e = Expression(e.shape, e.colour, SIZES[1 - SIZES.index(e.size)], e.cell)
            else:
                e = Expression(e.shape, e.colour, e.size, CELLS[int(rng.integers(len(CELLS)))])
        if e not in seen and not scene.is_true(e):
            seen.add(e)
            out.append(e)
    return out


def one_attribute_counterfactuals(scene: Scene, expr: Expression) -> list[Expression]:
    """Every expression that differs from ``expr`` in one attribute and describes NO object of
    ``scene``, in a fixed order: another shape, another (or an added) colour, the other size and
    another cell (the last two only where ``expr`` mentions them)."""
    out: list[Expression] = []
    for shape in SHAPES:
        if shape != expr.shape:
            out.append(Expression(shape, expr.colour, expr.size, expr.cell))
    for colour in COLOURS:
        if colour != expr.colour:
            out.append(Expression(expr.shape, colour, expr.size, expr.cell))
    if expr.size:
        out.append(Expression(expr.shape, expr.colour, SIZES[1 - SIZES.index(expr.size)], expr.cell))
    if expr.cell:
        out += [Expression(expr.shape, expr.colour, expr.size, c) for c in CELLS if c != expr.cell]
    return [e for e in dict.fromkeys(out) if not scene.is_true(e)]


def codes_true(object_codes: np.ndarray, object_count: np.ndarray, expr_codes: np.ndarray) -> np.ndarray:
    """(B, T) bool: expression t describes some object of scene b.

    ``object_codes`` (B, M, 4) padded attribute codes, ``object_count`` (B,), ``expr_codes`` (T, 4)."""
    e = expr_codes.T[:, None, None]  # 4,1,1,T
    o = np.moveaxis(object_codes, -1, 0)[..., None]  # 4,B,M,1
    hit = (e[0] == -1) | (o[0] == e[0])  # B,M,T; one attribute at a time (faster than a last-axis reduce)
    for k in range(1, 4):
        hit &= (e[k] == -1) | (o[k] == e[k])
    valid = np.arange(object_codes.shape[1])[None, :, None] < object_count[:, None, None]
    return (hit & valid).any(1)
