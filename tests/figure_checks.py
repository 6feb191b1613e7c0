"""Checks on drawn matplotlib axes shared by the figure tests: every legend entry has its drawn artist, and
every line shows at least one point that no other line covers."""

from __future__ import annotations

import numpy as np


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
