"""One fixed colour and marker per method in every figure, and legends that never cover the data."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.common.presentation.style import METHOD_ORDER, method_colors, method_style  # noqa: E402
from litelvlm.methods import TABLE  # noqa: E402


def test_every_method_has_its_own_fixed_colour_and_marker():
    names = sorted(set(TABLE) | set(METHOD_ORDER))
    pairs = {m: (tuple(method_style(m)["color"]), method_style(m)["marker"]) for m in names}
    assert len(set(pairs.values())) == len(names), pairs
    assert method_style("litelvlm")["color"] == (0.0, 0.0, 0.0) and method_style("litelvlm")["lw"] > 2
    assert all(method_style(m)["lw"] < method_style("litelvlm")["lw"] for m in names if m != "litelvlm")
    # a method's colour does not depend on what else is drawn
    assert method_colors(["vispruner"]) == {"vispruner": method_colors(["fastv", "vispruner"])["vispruner"]}
    assert method_style("a-method-from-tomorrow") == method_style("a-method-from-tomorrow")
    # methods sharing a colour differ in their line style as well as their marker
    by_colour: dict = {}
    for m in METHOD_ORDER:
        by_colour.setdefault(tuple(method_style(m)["color"]), []).append(method_style(m)["ls"])
    assert all(len(set(styles)) == len(styles) for styles in by_colour.values()), by_colour


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
