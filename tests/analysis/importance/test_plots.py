"""The importance plot functions on small hand-made tables: each returns (fig, ax) and draws what it is
given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.importance import plots  # noqa: E402
from analysis.importance.compute import METRICS, summary_table  # noqa: E402


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    out = []
    for image_id in (1, 2, 3):
        for sent in range(2):
            for clip in ("clip_rev_sim", "clip_topsim"):
                for q in ("seg", "last"):
                    for layer in range(3):
                        r = {"image_id": image_id, "sent_id": 10 * image_id + sent, "clip_signal": clip,
                             "llm_signal": "attention", "query": q, "layer": layer, "head": -1,
                             "area_bin": "[0.1,0.2)" if sent else "[0.2,0.4)"}
                        r.update({m: float(rng.uniform(0, 1)) for m in METRICS})
                        out.append(r)
                r = {"image_id": image_id, "sent_id": 10 * image_id + sent, "clip_signal": clip,
                     "llm_signal": "saliency", "query": "", "layer": -1, "head": -1, "area_bin": "[0.1,0.2)"}
                r.update({m: float(rng.uniform(0, 1)) for m in METRICS})
                out.append(r)
    return pd.DataFrame(out)


def test_summary_and_layer_and_overlap_plots(rows):
    summary = summary_table(rows, n_boot=50)
    assert set(summary["area_bin"]) == {"all", "[0.1,0.2)", "[0.2,0.4)"}
    allrows = summary[summary["area_bin"] == "all"]
    assert (allrows["n_images"] == 3).all() and (allrows["n_sentences"] == 6).all()
    fig, ax = plots.plot_importance_by_layer(summary)
    assert len(ax.lines) == 2 * 2 + 1                        # clip signal x query, plus the zero line
    np.testing.assert_allclose(ax.lines[0].get_ydata(),
                               allrows[(allrows["clip_signal"] == "clip_rev_sim")
                                       & (allrows["query"] == "last")]
                               .sort_values("layer")["spearman_mean"])
    plt.close(fig)
    fig, ax = plots.plot_overlap_vs_k(summary)
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["attn[last] L2", "attn[seg] L2", "saliency", "chance"]
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), [k / (2 * 576 - k) for k in (32, 64, 128, 192)])
    plt.close(fig)


def test_scatter_heatmaps_and_oracle_plots():
    rng = np.random.default_rng(1)
    base = {"image_id": 1, "sent_id": 5, "sentence": "the dog", "grid_h": 4, "grid_w": 4}
    scores = pd.DataFrame([{**base, "signal": s, "query": q, "layer": layer, "scores": rng.normal(size=16)}
                           for s, q,
                           layer
                           in [("clip_rev_sim", "", -1), ("attention", "seg", 0), ("attention", "seg", 1),
                                           ("saliency", "", -1)]])
    fig, ax = plots.plot_importance_scatter(scores, 5, y=("attention", "seg", -1))
    # the last layer
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], scores["scores"].iloc[2])
    plt.close(fig)
    fig, axes = plots.plot_signal_heatmaps(np.zeros((32, 32, 3), np.uint8), scores, 5)
    titles = [a.get_title() for a in axes.flat if a.get_visible()]
    assert titles == ["clip_rev_sim", "attn[seg] L1", "saliency"]
    plt.close(fig)
    summary = pd.DataFrame({"method": ["none", "litelvlm", "litelvlm", "saliency", "saliency"],
                            "budget": [576, 32, 128, 32, 128], "ciou": [0.5, 0.3, 0.4, 0.35, 0.45]})
    fig, ax = plots.plot_oracle_ablation(summary)
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["litelvlm", "saliency (oracle)", "none (all tokens)"]
    assert ax.lines[1].get_linestyle() == "--"
    plt.close(fig)
