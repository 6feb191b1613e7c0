"""Checks on drawn matplotlib axes shared by the figure tests: every legend entry has its drawn artist, and
every line shows at least one point that no other line covers."""

from __future__ import annotations

import re
import warnings

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox


def legend_without_artist(ax) -> list[str]:
    """Labels of ``ax``'s legend that name no artist with a finite point drawn on ``ax``."""
    legend = ax.get_legend()
    if legend is None:
        return []
    drawn = set()
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), float)
        if np.isfinite(y).any() and line.get_visible():
            drawn.add(line.get_label())
    for coll in ax.collections:
        offsets = np.asarray(coll.get_offsets(), float)
        if len(offsets) and np.isfinite(offsets).all(axis=-1).any():
            drawn.add(coll.get_label())
    drawn |= {p.get_label() for p in ax.patches}
    for container in ax.containers:  # bars: the container holds the label, its patches the heights
        heights = [getattr(p, "get_height", lambda: np.nan)() for p in getattr(container, "patches", [])]
        if np.isfinite(np.asarray(heights, float)).any():
            drawn.add(container.get_label())
    return [t.get_text() for t in legend.get_texts() if t.get_text() not in drawn]


def hidden_lines(ax, share: float = 0.01) -> list[str]:
    """Labels of ``ax``'s marked lines all of whose points lie on a point of another line (closer than
    ``share`` of the axes' width and height in display space): lines a reader cannot see."""
    ax.figure.canvas.draw()
    lines = [ln for ln in ax.get_lines() if ln.get_marker() not in (None, "None", "", " ")]
    pts = {}
    for ln in lines:
        xy = np.column_stack([ln.get_xdata(), ln.get_ydata()]).astype(float)
        xy = xy[np.isfinite(xy).all(axis=1)]
        pts[ln] = ax.transData.transform(xy) if len(xy) else np.empty((0, 2))
    box = ax.get_window_extent()
    tol = share * np.array([box.width, box.height])
    hidden = []
    for ln, p in pts.items():
        others = [q for other, q in pts.items() if other is not ln and len(q)]
        if not len(p):
            hidden.append(ln.get_label())
            continue
        covered = [any((np.abs(q - x) <= tol).all(axis=1).any() for q in others) for x in p]
        if all(covered):
            hidden.append(ln.get_label())
    return hidden


# --- a reviewer's checks, from matplotlib's own geometry
# (tests/analysis/common/presentation/test_figure_set_geometry.py)

#: an absolute path of a machine inside a text: a slash-rooted run of at least two folder names
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:[\w.+-]+/)+[\w.+-]*")
#: words of an axis label whose quantity is an integer (layers, budgets, token counts, counts)
INTEGER_LABEL = re.compile(r"^(?:(?:LLM|vision|CLIP|decoder|text)\s+)?(?:layers?|budget|k|visual tokens kept|"
                           r"tokens kept|number of|count of|frames?|heads?)\b", re.IGNORECASE)


def _undrawn_ticks(fig) -> set[int]:
    """The ids of the tick labels of ``fig`` that matplotlib does not draw (their tick lies outside the view
    interval)."""
    out = set()
    for ax in fig.axes:
        for axis in ax._axis_map.values():
            lo, hi = sorted(axis.get_view_interval())
            span = (hi - lo) * 1e-6
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not lo - span <= tick.get_loc() <= hi + span:
                    out |= {id(tick.label1), id(tick.label2)}
    return out


#: the figures :func:`reviewer_flaws` has laid out for its checks (each check reads that one layout)
_LAID_OUT: set[int] = set()


def _lay_out(fig) -> None:
    """Lay ``fig`` out (a draw without rendering), unless :func:`reviewer_flaws` has just done so."""
    if id(fig) not in _LAID_OUT:
        fig.draw_without_rendering()


def _renderer(fig):
    """The renderer of ``fig``'s layout; a closed figure (its canvas gone back to the base class, which has
    none) is given an Agg canvas first."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _texts(fig) -> list[Text]:
    """Every drawn, non-empty text of ``fig`` (after a layout)."""
    _lay_out(fig)
    undrawn = _undrawn_ticks(fig)
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn
            and (t.axes is None or t.axes.get_visible())]


def machine_paths(fig) -> list[str]:
    """The texts of ``fig`` that carry an absolute path of a machine (``/tmp/...``, ``/home/...``)."""
    return [t.get_text() for t in _texts(fig) if MACHINE_PATH.search(t.get_text())]


def _saved_box(fig) -> Bbox:
    """The area of ``fig`` that ``savefig(bbox_inches="tight")`` writes, in display pixels."""
    renderer = _renderer(fig)
    box = fig.get_tightbbox(renderer)
    return Bbox.from_extents(*(np.asarray(box.extents) * fig.dpi))


def texts_past_canvas(fig, tol: float = 1.0) -> list[str]:
    """Texts of ``fig`` that reach past the saved canvas, or past the clip box they are drawn in (a tick label
    or title cut where the figure or its axes end)."""
    renderer = _renderer(fig)
    canvas = _saved_box(fig)
    out = []
    for t in _texts(fig):
        box = t.get_window_extent(renderer)
        inside = [canvas]
        clip = t.get_clip_box() if t.get_clip_on() else None
        if clip is not None:
            inside.append(clip)
        for c in inside:
            if box.x0 < c.x0 - tol or box.x1 > c.x1 + tol or box.y0 < c.y0 - tol or box.y1 > c.y1 + tol:
                out.append(t.get_text())
                break
    return out


def overlapping_texts(fig, tol: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of texts of ``fig`` drawn over each other (a label over a header, crowded tick labels); the
    cells of a table are laid out by matplotlib and left out."""
    renderer = _renderer(fig)
    cells = {id(c.get_text()) for ax in fig.axes for tab in ax.tables for c in tab.get_celld().values()}
    texts = [t for t in _texts(fig) if id(t) not in cells]
    corners = [_text_corners(t, renderer) for t in texts]
    pairs = []
    for i, (a, ca) in enumerate(zip(texts, corners)):
        for b, cb in zip(texts[i + 1:], corners[i + 1:]):
            if _rectangles_overlap(ca, cb, tol):
                pairs.append((a.get_text(), b.get_text()))
    return pairs


def _text_corners(t: Text, renderer) -> np.ndarray:
    """The four display corners of the rectangle ``t``'s lines take, turned by its rotation (a slanted tick
    label's axis-aligned box is far larger than its text, and slanted neighbours' boxes cross)."""
    box = t.get_window_extent(renderer)
    turned = t.get_rotation()
    angle = np.deg2rad(turned)
    if np.isclose(np.sin(2 * angle), 0):
        return np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]])
    t.set_rotation(0)   # its lines' own size, measured level
    try:
        flat = t.get_window_extent(renderer)
    finally:
        t.set_rotation(turned)
    w, h = flat.width, flat.height
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return half @ turn.T + [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]


def _rectangles_overlap(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Whether two rectangles (4 corners each, in order) overlap by more than ``tol`` pixels along every
    direction that could separate them (their edges' normals)."""
    for quad in (a, b):
        for edge in (quad[1] - quad[0], quad[2] - quad[1]):
            normal = np.array([-edge[1], edge[0]]) / np.hypot(*edge)
            pa, pb = a @ normal, b @ normal
            if min(pa.max(), pb.max()) - max(pa.min(), pb.min()) <= tol:
                return False
    return True


def _data_points(ax) -> np.ndarray:
    """Display coordinates of what ``ax`` plots: the points of its lines (their segments sampled), scatter
    offsets, bars' corners and centres, and the vertices of its collections (intervals, bands)."""
    pts = [np.empty((0, 2))]
    for ln in ax.get_lines():
        if not ln.get_visible() or ln.get_gid() == "reference":
            continue
        xy = np.asarray(ln.get_xydata(), float)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) > 1 and ln.get_linestyle() not in ("None", "", " "):
            t = np.linspace(0, 1, 12)[:, None, None]
            xy = (xy[:-1] * (1 - t) + xy[1:] * t).reshape(-1, 2)
        if len(xy):
            pts.append(ln.get_transform().transform(xy))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offsets = np.asarray(coll.get_offsets(), float)
        if len(offsets) and coll.get_offset_transform() is not None and len(coll.get_paths()) <= 1:
            pts.append(coll.get_offset_transform().transform(offsets[np.isfinite(offsets).all(axis=1)]))
            continue
        for path in coll.get_paths():
            v = np.asarray(path.vertices, float)
            v = v[np.isfinite(v).all(axis=1)]
            if len(v):
                pts.append(coll.get_transform().transform(v))
    for p in ax.patches:
        if isinstance(p, Rectangle) and p.get_visible() and p.get_height() and p.get_width():
            box = p.get_window_extent()
            pts.append(np.array([[box.x0, box.y0], [box.x1, box.y1], [box.x0, box.y1], [box.x1, box.y0],
                                 [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2]]))
    return np.concatenate(pts)


def _inside(p: np.ndarray, box, pad: float) -> np.ndarray:
    """Which display points ``p`` lie in ``box`` grown by ``pad`` pixels (shrunk when negative)."""
    return ((p[:, 0] >= box.x0 - pad) & (p[:, 0] <= box.x1 + pad) & (p[:, 1] >= box.y0 - pad)
            & (p[:, 1] <= box.y1 + pad))


def legends_over_data(fig) -> list[str]:
    """The legends of ``fig`` (of its axes and its own) whose box covers a plotted point of any axes: each
    named by its first entry."""
    _lay_out(fig)
    renderer = _renderer(fig)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    points = [(ax, _data_points(ax)) for ax in fig.axes if ax.get_visible()]
    bad = []
    for leg in legends:
        if not leg.get_visible():
            continue
        box = leg.get_window_extent(renderer)
        for ax, p in points:
            axbox = ax.get_window_extent(renderer)
            p = p[_inside(p, axbox, 0.0)]   # what the axes clip away is not drawn
            if _inside(p, box, -1.0).any():
                texts = leg.get_texts()
                bad.append(texts[0].get_text() if texts else "legend")
                break
    return bad


def _is_number(s: str) -> bool:
    try:
        float(s.replace("\u2212", "-"))
    except ValueError:
        return False
    return True


def fractional_integer_ticks(fig) -> list[str]:
    """Axes of ``fig`` whose label names an integer quantity (a layer, a budget, a count:
    :data:`INTEGER_LABEL`) and whose tick labels show a fraction (``0.5``): ``"<axis label>: <tick>"``."""
    _lay_out(fig)
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            label = axis.get_label().get_text()
            if not label or not INTEGER_LABEL.search(label):
                continue
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_ticklabels():
                text = tick.get_text().strip()
                pos = tick.get_position()[0 if axis is ax.xaxis else 1]
                if not (tick.get_visible() and text and _is_number(text) and lo - 1e-9 <= pos <= hi + 1e-9):
                    continue
                if float(text.replace("\u2212", "-")) % 1:
                    out.append(f"{label}: {text}")
    return out


def drawn_intervals(fig) -> int:
    """How many interval marks ``fig`` draws: error bars and vertical or horizontal interval segments of
    non-zero length, and filled bands (``fill_between``)."""
    count = 0
    for ax in fig.axes:
        for coll in ax.collections:
            if isinstance(coll, LineCollection):
                count += sum(np.ptp(np.asarray(s, float), axis=0).max() > 0 for s in coll.get_segments()
                             if len(s) > 1 and np.isfinite(np.asarray(s, float)).all())
            elif isinstance(coll, PolyCollection) and coll.get_paths():
                count += sum(len(p.vertices) > 2 for p in coll.get_paths())
    return count


def says_n(fig) -> list[str]:
    """The texts of ``fig`` that state a sample size (``n = 2``, ``n=2``)."""
    return [t.get_text() for t in _texts(fig) if re.search(r"\bn\s*=\s*\d", t.get_text())]


#: an axis label naming the token budget (:func:`analysis.common.presentation.style.budget_axis`)
BUDGET_LABEL = re.compile(r"visual tokens kept|budget", re.IGNORECASE)


def unvaried_axes(fig) -> list[str]:
    """Axes of ``fig`` drawn against the budget (their x label names it) whose lines all stand at one budget:
    a figure of a quantity the run did not vary (``"<title or label>"``), unless the figure says so (its
    title or the axes' names "one budget")."""
    out = []
    said = any("one budget" in t.get_text() for t in fig.texts + [getattr(fig, "_suptitle", None) or Text()])
    for ax in fig.axes:
        if not BUDGET_LABEL.search(ax.get_xlabel()) or said or "one budget" in ax.get_title():
            continue
        xs = set()
        for ln in ax.get_lines():
            x = np.asarray(ln.get_xdata(), float)
            if len(x) > 1 or ln.get_gid() != "reference":
                xs |= set(x[np.isfinite(x)].tolist())
        for coll in ax.collections:
            offsets = np.asarray(coll.get_offsets(), float)
            xs |= set(offsets[np.isfinite(offsets).all(axis=1), 0].tolist()) if len(offsets) else set()
        # budgets moved apart on the log2 axis (``stat_plots.spread``) are one budget
        if len({round(float(np.log2(x)) * 2) if x > 0 else x for x in xs}) < 2:
            out.append(ax.get_title() or ax.get_xlabel())
    return out


#: the width a figure is printed at, at most (a two-column paper figure, inches) and the smallest text size a
#: reader can read there (points)
PRINT_WIDTH, SMALLEST_PRINTED_PT = 6.75, 3.5


def unreadable_texts(fig, width: float = PRINT_WIDTH, smallest: float = SMALLEST_PRINTED_PT) -> list[str]:
    """Texts of ``fig`` smaller than ``smallest`` points once the figure is printed ``width`` inches wide
    (a figure wider than the page shrinks; a narrower one is printed at its size)."""
    scale = min(1.0, width / fig.get_figwidth())
    return [t.get_text() for t in _texts(fig) if t.get_fontsize() * scale < smallest]


def legend_colours(fig) -> dict[str, set[str]]:
    """{legend label: the colours (hex) its entries are drawn in} over every legend of ``fig`` (its axes' and
    its own)."""
    from matplotlib.colors import to_hex

    out: dict[str, set[str]] = {}
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    for leg in legends:
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            if handle is None:
                continue
            if hasattr(handle, "get_color") and not hasattr(handle, "get_facecolor"):
                colour = handle.get_color()
            else:
                colour = handle.get_facecolor()
                colour = colour[0] if np.ndim(colour) == 2 and len(colour) else colour
            if colour is None or not len(np.atleast_1d(colour)):
                continue
            out.setdefault(text.get_text(), set()).add(to_hex(colour, keep_alpha=False))
    return out


def layout_abandoned(fig) -> list[str]:
    """matplotlib's warnings that it could not lay ``fig`` out (its constrained layout gave up: the axes would
    have had no room, so they keep the default positions and the command prints the warning), from one
    layout of it."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fig.draw_without_rendering()
    return [str(w.message) for w in seen if "layout not applied" in str(w.message)]


def reviewer_flaws(fig) -> dict[str, list]:
    """Every flaw of ``fig`` the checks above find (empty lists: none), each read from one layout of it."""
    abandoned = layout_abandoned(fig)
    _LAID_OUT.add(id(fig))
    try:
        return {"layout abandoned": abandoned, "legend over data": legends_over_data(fig),
                "text past the canvas": texts_past_canvas(fig),
                "texts over each other": overlapping_texts(fig), "fraction on an integer axis":
                fractional_integer_ticks(fig), "path of the machine": machine_paths(fig),
                "unreadable when printed": unreadable_texts(fig), "budget not varied": unvaried_axes(fig)}
    finally:
        _LAID_OUT.discard(id(fig))
