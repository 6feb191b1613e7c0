"""The figure of where a run's savings land, ``amdahl.png`` (this project's reading,
:mod:`analysis.common.measures.amdahl`): each pruned run's whole-call speed-up against its LLM speed-up, over
the curve a method that only shortens the LLM lies on (Amdahl's law at the unpruned call's LLM share) and that
curve's ceiling. A run above the curve saves outside the LLM (in the vision tower, say); one below pays
outside it (a selection step). One panel per attention kernel where the table has several (``attn``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from analysis.common.presentation.caveats import draw_notes
from analysis.common.presentation.stage_figure import run_name
from analysis.common.presentation.style import (
    REFERENCE_COLOR,
    TWO_COLUMN,
    figure,
    label_weights,
    method_style,
    model_name,
)
from litelvlm.methods import is_baseline

#: at most this many runs are named beside their points; more are named by method in the legend
LABELLED_RUNS = 12
#: the legend entries of the curve and its ceiling (more: the methods, named there)
REFERENCE_LINES = 2


def _panel(ax, table: pd.DataFrame, lengths: dict) -> None:
    """One kernel's curve, ceiling and runs (each named with its LLM sequence length where ``lengths`` has
    it)."""
    p = float(table["llm_share_of_base"].iloc[0])
    llm = table["llm_speedup"].to_numpy(float)
    top = max(float(np.nanmax(llm, initial=1.0)), 2.0) * 1.5
    low = min(0.9, float(np.nanmin(llm, initial=1.0)) * 0.9)   # a run whose LLM got slower stays in view
    s = np.geomspace(low, top, 100)
    ax.plot(s, 1 / ((1 - p) + p / s), color=REFERENCE_COLOR, lw=1.2, label="only the LLM shortened")
    ax.axhline(1 / (1 - p), color=REFERENCE_COLOR, ls="--", lw=1, label="its ceiling (the LLM's time at 0)")
    ax.axhline(1.0, color="0.8", lw=0.6, zorder=0)
    placed: list[tuple[float, float]] = []
    span = max(float(np.nanmax(table["speedup"].to_numpy(float), initial=1.0)), 1 / (1 - p) if p < 1 else 1.0)
    finite = np.isfinite(table["llm_speedup"].to_numpy(float)) & np.isfinite(table["speedup"].to_numpy(float))
    shown = table[finite]
    # few runs: each named beside its point; many: each method once in the legend, the budget by marker size
    named = len(shown) <= LABELLED_RUNS
    sizes = {b: 3.5 + 3 * i for i, b in enumerate(sorted(set(shown["budget"])))}
    seen: set[str] = set()
    for _, r in shown.iterrows():
        style, method = method_style(str(r["method"])), str(r["method"])
        label = None if named or method in seen else method
        seen.add(method)
        ax.plot([r["llm_speedup"]], [r["speedup"]], ls="none", marker=style["marker"],
                ms=5 if named else sizes[r["budget"]], color=style["color"], zorder=4, label=label)
        if not named:
            continue
        n = lengths.get((r["method"], r["budget"]))
        # runs at (nearly) one point: each further label a line lower, none over another
        at = (float(np.log10(r["llm_speedup"])), float(r["speedup"]))
        near = sum(abs(at[0] - x) < 0.08 and abs(at[1] - y) < 0.04 * span for x, y in placed)
        placed.append(at)
        ax.annotate(run_name(r["method"], r["budget"]) + (f", {n} tokens" if n is not None else ""),
                    (r["llm_speedup"], r["speedup"]),
                    textcoords="offset points", xytext=(4, 3 - 8 * near), fontsize=6)
    ax.set_xscale("log")
    ax.set_xlim(low, top)
    ticks = [2.0 ** k for k in range(int(np.ceil(np.log2(low))), int(np.log2(top)) + 1)]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])   # plain numbers, no scientific notation
    ax.xaxis.set_minor_locator(NullLocator())
    speeds = table["speedup"].to_numpy(float)
    high = max(1 / (1 - p) if p < 1 else 1.0, float(np.nanmax(speeds, initial=1.0)))
    ax.set_ylim(min(0.9, float(np.nanmin(speeds, initial=1.0)) * 0.95), high * 1.1)


def plot_amdahl(table: pd.DataFrame, model: str, notes: Iterable[str] = (), lengths: dict | None = None):
    """The figure of ``table`` (:func:`~analysis.common.measures.amdahl.amdahl_frame`), each run at the LLM
    sequence length ``lengths`` ({(method, budget): tokens}) gives; returns it."""
    lengths = lengths or {}
    base_len = next((n for (m, _), n in lengths.items() if is_baseline(str(m))), None)
    kernels = list(table["attn"].unique()) if "attn" in table else [None]
    fig, axes = figure(2, figsize=(TWO_COLUMN, 2.6), ncols=len(kernels), squeeze=False, sharey=True)
    for ax, attn in zip(axes[0], kernels):
        mine = table if attn is None else table[table["attn"] == attn]
        _panel(ax, mine, lengths)
        p = float(mine["llm_share_of_base"].iloc[0])
        ax.set_title(("" if attn is None else f"LLM attention: {attn}\n")
                     + f"LLM {p:.0%} of the unpruned call"
                     + (f" ({base_len} tokens)" if base_len is not None else "")
                     + f": at most {1 / (1 - p):.2f}x", fontsize=6.5)
    fig.supxlabel("LLM speed-up over the unpruned call (prefill + decode)", fontsize=8)
    axes[0][0].set_ylabel("whole-call speed-up")
    handles, labels = axes[0][-1].get_legend_handles_labels()
    many = len(labels) > 16
    axes[0][-1].legend(handles, labels, fontsize=5 if many else 6, ncol=2 if many else 1, loc="upper left",
                       bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                       title=("marker size: the budget (larger, more tokens kept)"
                              if len(labels) > REFERENCE_LINES else None), title_fontsize=5)
    fig.suptitle(f"{model_name(model)}: where each run's savings land (Amdahl's law, this project's reading)",
                 fontsize=7.5)
    label_weights(fig, model)
    draw_notes(fig, notes)
    return fig


__all__ = ["plot_amdahl"]
