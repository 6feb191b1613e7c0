"""Study 2, the text encoder's attention sink: the [EOS]->[SOS] share per layer and head, one sentence's
[EOS] attention, and the ablation's AUROC per text representation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm

from analysis.common.presentation.stat_plots import enough_units
from analysis.common.presentation.style import fig_ax, palette
from analysis.common.stats.bootstrap import MIN_UNITS

__all__ = ["plot_sink_heatmap", "plot_eos_attention_example", "plot_ablation_bars"]

#: the diverging map of a ratio around 1 (white at 1); shares in [0, 1] keep a sequential one
DIVERGING = ("RdBu_r",)


def plot_sink_heatmap(summary: pd.DataFrame, value: str = "sos_mean", relative: bool = False, ax=None):
    """The mean [EOS] attention share (default: on [SOS]) over text layer x head, on a sequential map over
    [0, 1]; ``relative`` divides by the uniform share 1/n, a ratio around 1 drawn on a diverging map centred
    on 1 and symmetric in log space (2x and 0.5x equally far)."""
    fig, ax = fig_ax(ax)
    d = summary[summary["head"] >= 0]
    grid = d.pivot(index="layer", columns="head", values=value)
    if relative:
        grid = grid / d.pivot(index="layer", columns="head", values="uniform_mean")
        values = grid.to_numpy(dtype=float)
        finite = values[np.isfinite(values) & (values > 0)]
        reach = float(np.max(np.abs(np.log(finite)))) if finite.size else 0.0
        reach = max(reach, np.log(1.1))   # at least 1/1.1 to 1.1, so that equal shares stay pale
        im = ax.imshow(np.clip(values, np.exp(-reach), None), cmap=DIVERGING[0], aspect="auto",
                       origin="lower", norm=LogNorm(vmin=np.exp(-reach), vmax=np.exp(reach)))
    else:
        im = ax.imshow(grid.to_numpy(), cmap="magma", aspect="auto", origin="lower", vmin=0, vmax=1)
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("head")
    ax.set_ylabel("text layer (block)")
    label = {"sos_mean": "[EOS]->[SOS]", "eos_mean": "[EOS]->[EOS]", "content_sum_mean": "[EOS]->content"}
    bar = fig.colorbar(im, ax=ax, label=label.get(value, value) + (" / uniform" if relative else " share"))
    if relative:   # plain numbers at 1 and the ends, halfway between in log space, no minor ticks
        ticks = np.exp(np.linspace(-reach, reach, 5))
        bar.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
        bar.ax.minorticks_off()
    return fig, ax


def plot_eos_attention_example(example: pd.DataFrame, text_index: int | None = None, ax=None):
    """One sentence's head-averaged [EOS] attention over its tokens, one row per text layer."""
    text_index = int(example["text_index"].min()) if text_index is None else text_index
    d = example[example["text_index"] == text_index]
    grid = d.pivot(index="layer", columns="position", values="attention")
    tokens = d.drop_duplicates("position").sort_values("position")["token"].tolist()
    fig, ax = fig_ax(ax, (2, 0.4) if len(tokens) > 8 else (1, 0.75))   # a column of room per token
    im = ax.imshow(grid.to_numpy(), cmap="Blues", aspect="auto", origin="lower", vmin=0, vmax=1)
    # upright labels, one per column: never over each other
    ax.set_xticks(range(len(tokens)), tokens, rotation=90, ha="center", fontsize="x-small")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_ylabel("text layer (block)")
    ax.set_title(f"[EOS] attention: {d['sentence'].iloc[0]!r}", fontsize="small")
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("attention\n(head mean)", fontsize="small")   # no longer than the bar
    return fig, ax


def plot_ablation_bars(summary: pd.DataFrame, ax=None, value: str = "auroc_reversed"):
    """AUROC_reversed per text representation (original, [SOS] masked, content mean) and layer, with CIs
    drawn where they rest on at least :data:`MIN_UNITS` images (below that the axis says so); n said on the
    x axis (on each bar where the bars' n differ)."""
    fig, ax = fig_ax(ax)
    d = summary[summary["breakdown"] == "all"]
    variants = list(dict.fromkeys(["original", *sorted(v for v in d["variant"].unique() if v != "original")]))
    variants = [v for v in variants if v in set(d["variant"])]
    layers = sorted(d["layer"].unique())
    width = 0.8 / max(len(variants), 1)
    unit = "images" if "n_images" in d else "sentences"
    units = d[f"n_{unit}"].to_numpy(dtype=float) if f"n_{unit}" in d else None
    few = units is not None and not enough_units(units, len(units)).all()
    for i, (v, color) in enumerate(zip(variants, palette(len(variants)))):
        sub = d[d["variant"] == v].set_index("layer").reindex(layers)
        mean = sub[f"{value}_mean"].to_numpy()
        err = np.abs(
            np.stack([mean - sub[f"{value}_ci_low"].to_numpy(), sub[f"{value}_ci_high"].to_numpy() - mean]))
        if units is not None:   # no interval over fewer than MIN_UNITS units, whatever the table holds
            err[:, ~enough_units(sub[f"n_{unit}"].to_numpy(dtype=float), len(layers))] = np.nan
        x = np.arange(len(layers)) + (i - (len(variants) - 1) / 2) * width
        ax.bar(x, mean, width, yerr=err, capsize=2, color=color, label=v)   # NaN: no interval drawn
        if units is not None and len(set(units)) > 1:   # each bar its n where they differ
            for xi, ni in zip(x, sub[f"n_{unit}"].to_numpy(dtype=float)):
                ax.text(xi, 0.02, f"n = {int(ni)} {unit}", rotation=90, ha="center", va="bottom",
                        fontsize="xx-small", color="white")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_xticks(range(len(layers)), [str(x) for x in layers])
    same = units is not None and len(set(units)) == 1
    ax.set_xlabel("vision layer" + (f" (n = {int(units[0])} {unit} per bar)" if same else ""))
    ax.set_ylabel("AUROC of -s for the referent" + (f"\nno interval where n < {MIN_UNITS} {unit}" * few))
    ax.set_ylim(0, 1)
    # beside the axes, never over the bars (they reach any height up to 1)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title="text representation", title_fontsize="x-small")
    return fig, ax
