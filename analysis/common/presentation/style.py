"""The figure style of every plot in the project, in one place.

seaborn ``paper`` context, a colour-blind-safe palette (:data:`PALETTE`), TrueType (Type 42) fonts in PDF and
PS output, sizes that fit one and two paper columns, and :func:`save_figure`, which writes
a PDF and a PNG whose bytes depend only on the figure: no creation date, no software
version stamp. ``SOURCE_DATE_EPOCH`` is honoured by matplotlib as well, but the dates are
dropped altogether here so that the same results give the same bytes on any day.
"""

from __future__ import annotations

import os
import textwrap
import zlib
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg

from litelvlm.methods import PAPER_COMPARISON, TABLE
from litelvlm.registry.provenance import weights_banner
from litelvlm.runs.io import FIGURE_FORMATS, PDF_METADATA, PNG_METADATA, save_plot  # noqa: F401 (re-exported)

#: Widths in inches of a one-column and a two-column figure (ICML/NeurIPS-style layouts).
ONE_COLUMN = 3.25
TWO_COLUMN = 6.75
#: Raster resolution of the PNG copies.
PNG_DPI = 200
#: The palette every plot draws from: Paul Tol's "bright" scheme without its grey, with his "vibrant"
#: orange and "muted" indigo; colour-blind safe, every two colours at least 30 apart in CIELAB (seaborn's
#: colour-blind palette's orange, vermillion and brown, 26-37 apart, read as one colour), and as far from
#: black and the reference grey. Methods take their colours from it (:func:`method_style`), other categories
#: in order.
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#EE7733", "#332288")

_RC = {
    "pdf.fonttype": 42,  # TrueType, editable text in PDFs; no Type 3 fonts
    "ps.fonttype": 42,
    "svg.hashsalt": "litelvlm",  # stable SVG ids if anyone saves SVG
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: identical glyphs everywhere
    "savefig.dpi": PNG_DPI,
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "legend.frameon": False,
}


def apply_style() -> None:
    """Set the project's matplotlib/seaborn style globally (idempotent).

    Starts from matplotlib's defaults, so a notebook kernel (inline backend rc) and a
    script draw the same figure.
    """
    matplotlib.rcdefaults()
    sns.set_theme(context="paper", style="ticks", palette=list(PALETTE), rc=_RC)
    matplotlib.rcParams.update(_RC)


def palette(n: int | None = None) -> list[tuple[float, float, float]]:
    """The project's palette (:data:`PALETTE`; ``n`` colours, cycled past its 8)."""
    return sns.color_palette(list(PALETTE), n)


def model_name(model: str) -> str:
    """A model as a figure names it: a folder (``local-dir:`` or a path) by its last two folder names
    (``toy/weights``), never the machine's absolute path; a preset or hub id as it is."""
    path = str(model).removeprefix("local-dir:")
    if not os.path.isabs(path):
        return str(model)
    parts = Path(path).parts[1:]
    return "/".join(parts[-2:]) if parts else str(model)


def method_label(method: str) -> str:
    """The legend name of ``method``: a method of this project's own (its registry description carries ‡,
    e.g. LiteLVLM‡, this project's reading of the paper) is marked as not in the official code."""
    return f"{method} (‡, not in the official code)" if method in TABLE and "‡" in TABLE[method][
        1] else method


#: the colours of the methods' style grid: :data:`PALETTE`'s
METHOD_PALETTE = tuple(matplotlib.colors.to_rgb(c) for c in PALETTE)
#: the grey of the unpruned model, drawn as a reference (a line across the axes, or its own style)
REFERENCE_COLOR = (0.45, 0.45, 0.45)
#: markers of the style grid (one per row of colours, shifted so no two slots share a pair), each with an
#: interior, so that a hollow marker (the paired figure's "not significant") reads as hollow
MARKERS = ("o", "s", "^", "D", "v", "p", "h", "<", ">", "8")
#: LiteLVLM, the method this project is about: black, thicker, drawn on top
LITELVLM_STYLE = {"color": (0.0, 0.0, 0.0), "marker": "o", "lw": 2.2, "zorder": 4}
#: the methods drawn in a style of their own, not the style grid's (LiteLVLM: :data:`LITELVLM_STYLE`; the
#: unpruned model: the reference's grey, dash-dotted)
OWN_STYLES = {"litelvlm": {**LITELVLM_STYLE, "ls": "-"},
              "none": {"color": REFERENCE_COLOR, "marker": "*", "ls": "-.", "lw": 1.0, "zorder": 3}}
#: line styles of the style grid's rows of colours (a colour's second method is dashed, its third dotted, its
#: fourth dash-dotted)
LINESTYLES = ("-", "--", ":", (0, (5, 1, 1, 1)))


def method_order() -> tuple[str, ...]:
    """The methods of the style grid, from the method registry: the paper's comparison first
    (:data:`litelvlm.methods.PAPER_COMPARISON`, its 8 published methods each a colour of its own, solid), then
    the registry's order (:data:`litelvlm.methods.TABLE`); the methods drawn in :data:`OWN_STYLES` left out. A
    method's place, hence its style, comes from there."""
    return tuple(m for m in dict.fromkeys([*PAPER_COMPARISON, *TABLE]) if m not in OWN_STYLES)


def ordered(methods: Iterable[str]) -> list[str]:
    """``methods``, each once, in the legends' order: the methods of :data:`OWN_STYLES` (LiteLVLM first), then
    the registry's order, then names the registry does not know, sorted."""
    found = list(dict.fromkeys(methods))
    known = list(dict.fromkeys([*OWN_STYLES, *method_order()]))
    return [m for m in known if m in found] + sorted(m for m in found if m not in known)


def _slot(method: str) -> int:
    order = method_order()
    if method in order:
        return order.index(method)
    width = len(METHOD_PALETTE) * len(LINESTYLES)   # a name the registry does not know: a slot past them
    return len(order) + zlib.crc32(method.encode()) % max(width * 3 - len(order), 1)


def method_style(method: str) -> dict:
    """The fixed line style of ``method`` in every figure: ``color``, ``marker``, ``ls``, ``lw`` and
    ``zorder`` (LiteLVLM black, solid and thicker; the registry's methods each a colour of
    :data:`METHOD_PALETTE` and a line style, no two alike, with a marker of their own)."""
    if method in OWN_STYLES:
        return dict(OWN_STYLES[method])
    i, k = _slot(method), len(METHOD_PALETTE)
    return {"color": METHOD_PALETTE[i % k], "marker": MARKERS[(i // k + i) % len(MARKERS)],
            "ls": LINESTYLES[(i // k) % len(LINESTYLES)], "lw": 1.2, "zorder": 3}


def method_colors(methods: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """The fixed colour of each method (:func:`method_style`), the same in every figure."""
    return {m: method_style(m)["color"] for m in dict.fromkeys(methods)}


def budget_axis(ax, budgets: Iterable) -> None:
    """The x axis of every plot against the token budget: log2 scale, the budgets as its only ticks."""
    ticks = sorted({int(b) for b in budgets})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("visual tokens kept (K)")


#: the most entries a legend beside the axes lists in one column; a longer one takes two, or it would stand
#: taller than the figure and leave the axes no room
BESIDE_ROWS = 12


def beside_columns(entries: int) -> int:
    """The columns of a legend beside the axes that lists ``entries``: one, two past :data:`BESIDE_ROWS`."""
    return 1 if entries <= BESIDE_ROWS else 2


def figsize(columns: int = 1, aspect: float = 0.75, height: float | None = None) -> tuple[float, float]:
    """(width, height) in inches for a figure spanning ``columns`` (1 or 2) paper columns."""
    if columns not in (1, 2):
        raise ValueError(f"columns must be 1 or 2, got {columns}")
    width = ONE_COLUMN if columns == 1 else TWO_COLUMN
    return width, (height if height is not None else width * aspect)


def figure(columns: int = 1, aspect: float = 0.75, nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` in the project style and a column-fitting size; returns ``(fig, axes)``."""
    apply_style()
    kwargs.setdefault("figsize", figsize(columns, aspect))
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)


def fig_ax(ax=None, size: tuple[float, float] = (1, 0.75)):
    """``(ax.figure, ax)``, or a new figure in the project style (``size``: columns, aspect) and its axes."""
    apply_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize(*size), layout="constrained")
    return ax.figure, ax


#: colour and size of the footnote that marks a figure made from random or toy weights
FOOTNOTE_COLOR = "#b2182b"
FOOTNOTE_SIZE = 6


def laid_out_renderer(fig):
    """``fig`` laid out (a draw without rendering) and the renderer that measured it; a closed or canvas-less
    figure is given an Agg canvas to measure with first."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def weights_footnote(fig, *models: str | None) -> str | None:
    """Write the weights banner of ``models`` (:func:`litelvlm.registry.provenance.weights_banner`) under
    ``fig`` as a footnote; returns it, or None (nothing drawn) when every model has real weights."""
    banner = weights_banner(*models)
    if banner is None:
        return None
    text = "\n".join(textwrap.wrap(banner, max(40, int(fig.get_figwidth() * 17))))  # fits the width
    style = {"ha": "left", "va": "top", "fontsize": FOOTNOTE_SIZE, "color": FOOTNOTE_COLOR,
             "fontweight": "bold", "gid": "weights-footnote"}
    renderer = laid_out_renderer(fig)  # lay the figure out, then put the note under everything drawn
    box = fig.get_tightbbox(renderer)
    if box is None:
        fig.text(0.01, 0.0, text, **style)
        return banner
    x = max(box.x0 / fig.get_figwidth(), 0.0)
    lowest = min((leg.get_window_extent(renderer).y0 / fig.dpi for leg in fig.legends), default=float("inf"))
    if lowest <= box.y0 + 1e-6:
        # a figure legend at the bottom is anchored to the saved area's bottom edge, which a note
        # below would move: the note goes above everything instead
        fig.text(x, max(box.y1 / fig.get_figheight(), 1.0) + 0.005, text, **{**style, "va": "bottom"})
    else:
        fig.text(x, min(box.y0 / fig.get_figheight(), 0.0) - 0.01, text, **style)
    return banner


#: the gid of a figure that carries the note of the weights behind its own data (:func:`label_weights`):
#: ``save_figures`` then adds no note of the whole results tree
LABELLED_GID = "weights-labelled"


def label_weights(fig, *models: str | None) -> str | None:
    """:func:`weights_footnote` for the models that made THIS figure's data (one run of a tree holding
    several), and mark the figure so that no note of the whole tree is added when it is saved."""
    banner = weights_footnote(fig, *models)
    fig.set_gid(LABELLED_GID)
    return banner


def save_figure(fig, out_dir: str | os.PathLike, name: str, formats: Iterable[str] = FIGURE_FORMATS,
                close: bool = True) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.pdf`` and ``.png`` (atomically, reproducible bytes); return the
    paths."""
    out_dir = Path(out_dir)
    paths = []
    for fmt in formats:
        if fmt not in FIGURE_FORMATS:
            raise ValueError(f"unsupported figure format {fmt!r}; use one of {FIGURE_FORMATS}")
        paths.append(save_plot(fig, out_dir / f"{name}.{fmt}", fmt, dpi=PNG_DPI, bbox_inches="tight",
                               pad_inches=0.02))
    if close:
        plt.close(fig)
    return paths
