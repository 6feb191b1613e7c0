"""One fixed colour and marker per method in every figure, and legends that never cover the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.common.presentation.style import (  # noqa: E402
    METHOD_PALETTE,
    OWN_STYLES,
    REFERENCE_COLOR,
    method_colors,
    method_order,
    method_style,
)
from litelvlm.methods import PAPER_COMPARISON, TABLE  # noqa: E402
from tests.figure_checks import layout_abandoned  # noqa: E402

#: the least CIELAB distance (CIE76) between two colours a reader must tell apart: the seaborn colour-blind
#: palette's orange and vermillion are 25.6 apart, its brown 37 from the orange
MIN_DELTA_E = 30.0


def cielab(rgb) -> np.ndarray:
    """sRGB in [0, 1] to CIELAB (D65)."""
    c = np.asarray(rgb, float)[:3]
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b) -> float:
    return float(np.linalg.norm(cielab(a) - cielab(b)))


def test_every_method_has_its_own_fixed_colour_and_marker():
    names = sorted(TABLE)
    styles = {m: (tuple(method_style(m)["color"]), method_style(m)["marker"], method_style(m)["ls"])
              for m in names}
    assert len(set(styles.values())) == len(names), styles
    assert method_style("litelvlm")["color"] == (0.0, 0.0, 0.0) and method_style("litelvlm")["lw"] > 2
    assert all(method_style(m)["lw"] < method_style("litelvlm")["lw"] for m in names if m != "litelvlm")
    # a method's colour does not depend on what else is drawn
    assert method_colors(["vispruner"]) == {"vispruner": method_colors(["fastv", "vispruner"])["vispruner"]}
    assert method_style("a-method-from-tomorrow") == method_style("a-method-from-tomorrow")
    # methods sharing a colour differ in their line style as well as their marker
    by_colour: dict = {}
    for m in names:
        by_colour.setdefault(tuple(method_style(m)["color"]), []).append(method_style(m)["ls"])
    assert all(len(set(ls)) == len(ls) for ls in by_colour.values()), by_colour


def test_the_palette_comes_from_the_registry_and_no_two_of_its_colours_look_alike():
    """Every registered method, the paper's comparison first, then the registry's order; its colour from a
    palette whose colours are all at least MIN_DELTA_E apart, and as far from LiteLVLM's black and the
    unpruned reference's grey."""
    assert set(PAPER_COMPARISON) <= set(TABLE)
    order = dict.fromkeys([*PAPER_COMPARISON, *TABLE])
    assert method_order() == tuple(m for m in order if m not in OWN_STYLES)
    # the paper's 8 published methods: 8 colours of their own, every one solid
    paper = [m for m in PAPER_COMPARISON if m not in OWN_STYLES]
    assert len({tuple(method_style(m)["color"]) for m in paper}) == len(paper) == len(METHOD_PALETTE)
    assert {method_style(m)["ls"] for m in paper} == {"-"}
    gaps = {(a, b): delta_e(a, b) for i, a in enumerate(METHOD_PALETTE) for b in METHOD_PALETTE[i + 1:]}
    assert min(gaps.values()) >= MIN_DELTA_E, sorted(gaps.items(), key=lambda kv: kv[1])[:3]
    for fixed in ((0.0, 0.0, 0.0), REFERENCE_COLOR):
        assert min(delta_e(c, fixed) for c in METHOD_PALETTE) >= MIN_DELTA_E, fixed
    for m in method_order():
        if m != "none":
            assert tuple(method_style(m)["color"]) in {tuple(c) for c in METHOD_PALETTE}, m
    # the common run of the issue: none of its methods in colours a reader could confuse
    run = ["fastv", "vispruner", "v2drop", "random-deep", "downsample", "random", "divprune", "prumerge"]
    same_ls = [(a, b) for i, a in enumerate(run) for b in run[i + 1:]
               if method_style(a)["ls"] == method_style(b)["ls"]]
    assert all(delta_e(method_style(a)["color"], method_style(b)["color"]) >= MIN_DELTA_E for a, b in same_ls)


def _summary() -> pd.DataFrame:
    rows = [{"method": m, "budget": b, "ciou": 0.1 + 0.01 * i + 0.001 * b, "giou": 0.2}
            for i, m in enumerate(sorted(TABLE)) if m != "none" for b in (192, 64)]
    return pd.DataFrame(rows + [{"method": "none", "budget": 576, "ciou": 0.3, "giou": 0.3}])


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("kind", ["grounding", "efficiency"])
def test_legend_with_every_method_stays_outside_the_axes(kind):
    import matplotlib.pyplot as plt

    if kind == "grounding":
        from analysis.grounding.plots import plot_iou_vs_budget

        fig, ax = plot_iou_vs_budget(_summary(), "ciou")
    else:
        from analysis.efficiency.plots import plot_flops_vs_budget

        df = _summary().rename(columns={"ciou": "paper_tflops"}).assign(attn="eager", arch="tiny")
        fig, ax = plot_flops_vs_budget(df)
    assert layout_abandoned(fig) == [], "the legend leaves the axes no room"
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legend = ax.get_legend()
    assert legend is not None
    box = legend.get_window_extent(r)
    assert not _overlap(box, ax.get_window_extent(r)), "the legend covers the axes"
    assert not _overlap(box, ax.xaxis.label.get_window_extent(r)), "the legend covers the x label"
    labels = [t.get_text() for t in legend.get_texts()]
    assert sum(m in " ".join(labels) for m in TABLE if m != "none") >= len(TABLE) - 2  # every method listed
    styles = {(tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color(),
               line.get_marker()) for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert len(styles) >= len([m for m in TABLE if m != "none"]) - 1
    plt.close(fig)


@pytest.mark.parametrize("groups", [5, 40, 80])
def test_breakdown_labels_never_overlap(groups):
    """``reversal_by_category`` with COCO's many categories: no two group labels overlap."""
    import matplotlib.pyplot as plt

    from analysis.reversal.plots import plot_reversal_breakdown

    name = "cat {}" if groups <= 12 else "category number {}"  # short labels stay vertical, rotated
    rows = [{"breakdown": "category", "group": name.format(i), "layer": 23, "n_sentences": 3 + i,
             "auroc_reversed_mean": 0.3 + 0.005 * i, "auroc_reversed_ci_low": 0.25,
             "auroc_reversed_ci_high": 0.9}
            for i in range(groups)]
    fig, ax = plot_reversal_breakdown(pd.DataFrame(rows), "category")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ticks = ax.get_yticklabels() if groups > 12 else ax.get_xticklabels()
    boxes = [t.get_window_extent(r) for t in ticks if t.get_text()]
    assert len(boxes) == groups
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "labels overlap"
    plt.close(fig)
