"""The study's answer per layer (:mod:`analysis.importance.answer`): the headline gives, for the reversed
CLIP ranks and each method's score, the correlation with attention at every layer studied and with each
attribution, with intervals and n; it reads the same query as the mission figure; and a correlation that
holds by construction (FastV's score against the attention of the layer it ranks by) is labelled so on
screen and in the figure."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis.importance.answer import BY_CONSTRUCTION, answer_query, by_construction, importance_headline
from analysis.importance.plots import plot_mission_correlation

matplotlib.use("Agg")

SIGNALS = ("clip_rev_sim", "clip_topsim", "method:fastv", "method:dart")
LAYERS = 4


def _summary(queries=("seg", "text", "last")) -> pd.DataFrame:
    """A summary of 4 layers x ``queries`` of attention and one saliency per CLIP-side signal; FastV's score
    against its own layer's attention is 1."""
    rng = np.random.default_rng(2)
    rows = []
    for signal in SIGNALS:
        for q in queries:
            for layer in range(LAYERS):
                v = 1.0 if signal == "method:fastv" and layer == 1 and q == "last" else rng.uniform(-.5, .5)
                rows.append({"clip_signal": signal, "llm_signal": "attention", "query": q, "layer": layer,
                             "area_bin": "all", "n_sentences": 12, "n_images": 5, "spearman_mean": v,
                             "spearman_lo": v - 0.1, "spearman_hi": v + 0.1})
        v = rng.uniform(-.5, .5)
        rows.append({"clip_signal": signal, "llm_signal": "saliency", "query": np.nan, "layer": -1,
                     "area_bin": "all", "n_sentences": 12, "n_images": 5, "spearman_mean": v,
                     "spearman_lo": v - 0.1, "spearman_hi": v + 0.1})
    return pd.DataFrame(rows)


def test_the_headline_gives_every_layer_and_each_attribution_with_intervals_and_n():
    summary = _summary()
    lines = importance_headline(summary, num_layers=LAYERS)
    assert "[seg] rows at every layer" in lines[0] and "n = 12 sentences on 5 images" in lines[0]
    for name in ("reversed CLIP similarity", "fastv's score", "dart's score"):
        att = next(ln for ln in lines if ln.startswith(f"  {name} vs attention [seg]: "))
        got = re.findall(r"L(\d) (-?\d\.\d{3}) \[(-?\d\.\d{3}), (-?\d\.\d{3})\]", att)
        assert [int(layer) for layer, *_ in got] == list(range(LAYERS)), att
        signal = "clip_rev_sim" if name.startswith("reversed") else f"method:{name.split(chr(39))[0]}"
        want = summary[(summary.clip_signal == signal) & (summary["query"] == "seg")].sort_values("layer")
        assert [float(v) for _, v, _, _ in got] == pytest.approx(list(want.spearman_mean), abs=6e-4)
        assert any(ln.startswith(f"  {name} vs saliency: ") and "[" in ln for ln in lines)
    assert not any("clip_topsim" in ln or "chosen after the fact" in ln for ln in lines)


def test_a_correlation_by_construction_is_labelled_on_screen():
    lines = importance_headline(_summary(), num_layers=LAYERS)
    fastv = next(ln for ln in lines if ln.startswith("  fastv's score vs attention"))
    assert re.search(r"L1 -?\d\.\d{3} \[[^]]+\] \*", fastv) and fastv.count("*") == 1
    assert "*" not in next(ln for ln in lines if ln.startswith("  dart's score vs attention"))
    assert lines[-1] == f"  * {BY_CONSTRUCTION}, not a finding"
    assert by_construction("method:fastv", "attention", 1, 4) and not by_construction(
        "method:fastv", "saliency", 1, 4) and not by_construction("clip_rev_sim", "attention", 1, 4)
    assert by_construction("method:sparsevlm", "attention", 15, 32)   # its three raters' layers on 32
    assert "*" not in "\n".join(importance_headline(_summary().query("clip_signal != 'method:fastv'"), 4))


@pytest.mark.parametrize("queries", [("seg", "text", "last"), ("text", "last")], ids=["seg", "no-seg"])
def test_the_figure_draws_the_query_the_headline_reports(queries):
    summary = _summary(queries)
    query = answer_query(summary)
    assert query == ("seg" if "seg" in queries else "last")
    assert f"[{query}] rows" in importance_headline(summary, LAYERS)[0]
    fig, axes = plot_mission_correlation(summary, num_layers=LAYERS)
    assert f"[{query}] rows" in axes[0].get_title()
    lite = next(ln for ln in axes[0].get_lines() if ln.get_label().startswith("reversed CLIP ranks"))
    want = summary[(summary.clip_signal == "clip_rev_sim") & (summary["query"] == query)].sort_values("layer")
    assert list(lite.get_ydata()) == pytest.approx(list(want.spearman_mean))
    matplotlib.pyplot.close(fig)


def test_the_figure_labels_a_correlation_by_construction():
    fig, axes = plot_mission_correlation(_summary(), num_layers=LAYERS)
    marked = [a for a in axes[0].get_children() if a.get_gid() == "by-construction"]
    assert len(marked) == 1 and list(marked[0].get_xdata()) == [1]
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert any("by construction" in t for t in texts)
    matplotlib.pyplot.close(fig)
