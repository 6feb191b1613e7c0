"""The efficiency figures of a video table (``analysis/efficiency/plots.py``): one line per method and
arrangement, named ``method (arrangement)``, and the dashed limits one per arrangement, whether the rows come
as ``efficiency.csv`` holds them (``litelvlm figures``) or already labelled (the efficiency study's own)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from analysis.efficiency import plots

#: visual tokens of one video prompt per frame's LLM tokens: 16 frames + 16 x 64 video tokens
_N = {"pool": {196: 3328, 81: 3328}, "pool-min": {196: 3328, 81: 2320}, "direct": {196: 4160, 81: 2320}}


def _video_table() -> pd.DataFrame:
    rows = [{"method": "none", "budget": 576, "arrangement": "pool", "n_tokens": 3328}]
    rows += [{"method": m, "budget": k, "arrangement": arr, "n_tokens": n} for m in ("litelvlm", "vispruner")
             for arr, by_k in _N.items() for k, n in by_k.items()]
    df = pd.DataFrame(rows).assign(attn="eager", arch="videoglamm-tiny", prune_layer=0)
    return df.assign(paper_tflops=df["n_tokens"] / 1000, paper_act_reduction=3328 / df["n_tokens"])


@pytest.mark.parametrize("plot", ["plot_flops_vs_budget", "plot_memory_vs_budget"])
@pytest.mark.parametrize("labelled", [False, True])
def test_every_arrangement_is_its_own_named_line(plot, labelled):
    df = _video_table()
    if labelled:  # as the efficiency study passes them (its family's figure_rows)
        pruned = df["method"] != "none"
        df.loc[pruned, "method"] = df["method"] + " (" + df["arrangement"] + ")"
    fig, ax = getattr(plots, plot)(df)
    drawn = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    for arr, by_k in _N.items():
        name = f"litelvlm ({arr}) = vispruner ({arr})"   # equal values: one line naming both
        expect = [by_k[k] / 3328 if plot == "plot_flops_vs_budget" else 3328 / by_k[k] for k in (81, 196)]
        assert drawn[name] == pytest.approx(expect)
    if plot == "plot_memory_vs_budget":  # the token-count limit of each arrangement, named
        assert drawn["token-count ratio (linear in n), pool"] == pytest.approx([1, 1, 1])
        assert drawn["token-count ratio (linear in n), pool-min"] == pytest.approx([3328 / 2320, 1])
    assert not any(name.count("(") > name.count(")") or "(pool) (pool)" in name for name in drawn)
    plt.close(fig)


def test_a_table_without_arrangements_is_unchanged():
    df = _video_table().drop(columns="arrangement")
    df = df[~df.duplicated(["method", "budget"])]
    fig, ax = plots.plot_memory_vs_budget(df)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "token-count ratio (linear in n)" and not any("pool" in x for x in labels)
    plt.close(fig)
