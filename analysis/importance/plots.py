"""Plots of the importance study: agreement of CLIP-side token ranks with the LLM's own token importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy import stats

from analysis.common.presentation.style import (
    LITELVLM_STYLE,
    figsize,
    figure,
    method_style,
    palette,
)
from analysis.common.stats.bootstrap import MIN_UNITS
from analysis.importance import answer
from analysis.importance.options import GRADIENT_SIGNALS
from litelvlm.methods import TABLE, get_method, is_baseline

__all__ = ["plot_importance_by_layer", "plot_importance_scatter", "plot_overlap_vs_k", "plot_signal_heatmaps",
           "plot_oracle_ablation", "plot_mission_correlation", "MIN_INTERVAL_N"]

#: the fewest images an interval is drawn over (the statistics' one rule); below it the figure says n instead
MIN_INTERVAL_N = MIN_UNITS


def _is_oracle(method: str) -> bool:
    """Whether ``method`` is a registered analysis oracle (``Method.oracle``: drawn dashed)."""
    return method in TABLE and get_method(method).oracle


def _label(query: str, layer: int, name: str) -> str:
    if name == "attention":
        return f"attn[{query}]" + (f" L{layer}" if layer >= 0 else "")
    return name


def _band(ax, g: pd.DataFrame, x: str, metric: str, color) -> None:
    """The 95% interval of ``metric`` as a band over ``x``, where the rows of ``g`` hold at least
    :data:`MIN_INTERVAL_N` images (``n_images``; every row when the table has no count)."""
    ok = g["n_images"] >= MIN_INTERVAL_N if "n_images" in g else pd.Series(True, index=g.index)
    if ok.any():
        ax.fill_between(g[x], g[f"{metric}_lo"].where(ok), g[f"{metric}_hi"].where(ok), color=color,
                        alpha=0.15, lw=0)


def _n_note(rows: pd.DataFrame) -> str:
    """How many images the rows hold (``n = 2``, or a range), and whether intervals are drawn."""
    if "n_images" not in rows or rows.empty:
        return "95% CI over images"
    lo, hi = int(rows["n_images"].min()), int(rows["n_images"].max())
    n = f"n = {lo}" if lo == hi else f"n = {lo}-{hi}"
    if hi < MIN_INTERVAL_N:
        return f"{n} image{'s' if hi > 1 else ''}: no interval drawn (fewer than {MIN_INTERVAL_N})"
    fewer = f" (none drawn under {MIN_INTERVAL_N})" if lo < MIN_INTERVAL_N else ""
    return f"95% CI over images, {n}{fewer}"


def plot_importance_by_layer(summary: pd.DataFrame, metric: str = "spearman", llm_signal: str = "attention",
                             area_bin: str = "all", ax=None):
    """``metric`` (mean, 95% CI band) against LLM layer, one line per CLIP signal (its colour) x query set
    (its line style); the legend beside the axes, never over the lines."""
    if ax is None:
        fig, ax = figure(2, 0.4)
    fig = ax.figure
    s = summary[(summary["llm_signal"] == llm_signal) & (summary["area_bin"].astype(str) == area_bin)]
    signals = sorted(s["clip_signal"].unique())
    colors = signal_colors(signals)
    styles = {"seg": "-", "last": "--", "text": ":"}
    for (clip, query), g in s.groupby(["clip_signal", "query"], sort=True):
        g = g.sort_values("layer")
        ax.plot(g["layer"], g[f"{metric}_mean"], styles.get(query, "-"), marker="o", ms=3,
                color=colors[clip], label=f"{clip} vs {query}")
        _band(ax, g, "layer", metric, colors[clip])
    ax.axhline(0, color="0.6", lw=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("LLM layer")
    ax.set_ylabel(f"{metric} (mean, 95% CI)")
    ax.set_title(f"CLIP signals vs {llm_signal} rows by layer ({_n_note(s)})", fontsize=7)
    ax.legend(fontsize=5, ncols=1 + len(s.groupby(["clip_signal", "query"])) // 9, loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig, ax


def plot_importance_scatter(scores: pd.DataFrame, sent_id: int | None = None, x: str = "clip_rev_sim",
                            y: tuple[str, str, int] = ("attention", "seg", -1), ax=None):
    """One sentence: per-token CLIP score ``x`` against LLM signal ``y`` = (name, query, layer; -1 = last)."""
    sent_id = int(scores["sent_id"].iloc[0]) if sent_id is None else sent_id
    one = scores[scores["sent_id"] == sent_id]
    name, query, layer = y
    ys = one[(one["signal"] == name) & (one["query"] == query)]
    if layer == -1 and name == "attention":
        layer = int(ys["layer"].max())
    ys = ys[ys["layer"] == layer]
    xs = one[one["signal"] == x]
    if xs.empty or ys.empty:
        raise ValueError(f"sentence {sent_id} has no scores for {x!r} or {y!r}")
    a, b = np.asarray(xs["scores"].iloc[0]), np.asarray(ys["scores"].iloc[0])
    if ax is None:
        fig, ax = figure(1, 0.9)
    fig = ax.figure
    ax.scatter(a, b, s=4, alpha=0.6, color=palette(1)[0], lw=0)
    rho = stats.spearmanr(a, b).statistic
    ax.set_xlabel(x)
    ax.set_ylabel(_label(query, layer, name))
    ax.set_title(f"{one['sentence'].iloc[0][:40]!r}  (Spearman {rho:.2f})", fontsize=6)
    return fig, ax


def plot_overlap_vs_k(summary: pd.DataFrame, clip_signal: str = "clip_rev_sim", area_bin: str = "all",
                      num_tokens: int = 576, layer: int | None = None, ax=None):
    """Top-k Jaccard (mean, 95% CI) against k per LLM signal (attention at ``layer``, default the last),
    with the chance level k / (2N - k) of two random top-k sets."""
    if ax is None:
        fig, ax = figure(1, 0.8)
    fig = ax.figure
    ks = sorted(int(c.split("_")[1]) for c in summary.columns if c.startswith("jaccard_")
                and c.endswith("_mean"))
    s = summary[(summary["clip_signal"] == clip_signal) & (summary["area_bin"].astype(str) == area_bin)]
    lines = []
    for (name, query), g in s.groupby(["llm_signal", "query"], sort=True, dropna=False):
        at = int(g["layer"].max()) if layer is None or name != "attention" else layer
        for _, row in g[g["layer"] == at].iterrows():
            lines.append((_label(query if isinstance(query, str) else "", at, name), row))
    labels = list(dict.fromkeys(lab for lab, _ in lines))  # LLM signals, not methods: the palette in order
    colors = dict(zip(labels, palette(max(len(labels), 1))))
    for lab, row in lines:
        m = [row[f"jaccard_{k}_mean"] for k in ks]
        lo = [row[f"jaccard_{k}_lo"] for k in ks]
        hi = [row[f"jaccard_{k}_hi"] for k in ks]
        ax.plot(ks, m, marker="o", ms=3, color=colors[lab], label=lab)
        ax.fill_between(ks, lo, hi, color=colors[lab], alpha=0.15, lw=0)
    k = np.asarray(ks, float)
    ax.plot(ks, k / (2 * num_tokens - k), color="0.5", ls="--", lw=0.8, label="chance")
    ax.set_xlabel("k")
    ax.set_ylabel(f"top-k Jaccard with {clip_signal}")
    ax.legend(fontsize=5)
    return fig, ax


def plot_signal_heatmaps(image: np.ndarray, scores: pd.DataFrame, sent_id: int | None = None,
                         signals: list[tuple[str, str, int]] | None = None, alpha: float = 0.6,
                         referent: np.ndarray | None = None):
    """Side-by-side heat maps of one sentence's signals over the CLIP input window ``image``.

    ``signals``: (name, query, layer) triples; default: every CLIP signal, attention of each query set at
    the last layer, and every other LLM signal present. Each map is min-max scaled (one colourbar);
    ``referent``, the referent's mask over the window (H, W bool), is outlined on every map.
    """
    sent_id = int(scores["sent_id"].iloc[0]) if sent_id is None else sent_id
    one = scores[scores["sent_id"] == sent_id]
    if signals is None:
        last = int(one["layer"].max())
        signals = []
        for _, r in one.iterrows():
            key = (r["signal"], r["query"], int(r["layer"]))
            if r["signal"] == "attention" and r["layer"] != last:
                continue
            if key not in signals:
                signals.append(key)
    n = len(signals)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig, axes = figure(2, 1.0, nrows=rows, ncols=cols, squeeze=False,
                       figsize=figsize(2, height=1.45 * rows + 0.3))
    h, w = image.shape[:2]
    for ax, (name, query, layer) in zip(axes.flat, signals):
        r = one[(one["signal"] == name) & (one["query"] == query) & (one["layer"] == layer)].iloc[0]
        grid = (int(r["grid_h"]), int(r["grid_w"]))
        v = np.asarray(r["scores"], float).reshape(grid)
        v = (v - v.min()) / (np.ptp(v) or 1.0)
        ax.imshow(image)
        mappable = ax.imshow(v, extent=(0, w, h, 0), cmap="magma", alpha=alpha, interpolation="nearest",
                             vmin=0.0, vmax=1.0)
        if referent is not None and np.asarray(referent).any():
            ax.contour(np.asarray(referent, float), levels=[0.5], colors="cyan", linewidths=0.9)
        ax.set_title(_label(query, layer, name), fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if n:
        cbar = fig.colorbar(mappable, ax=axes, shrink=0.8, pad=0.01)
        cbar.set_label("score, min-max scaled per map\n(0 = lowest, 1 = highest token; no unit)", fontsize=6)
        cbar.ax.tick_params(labelsize=5)
    title = f"{one['sentence'].iloc[0][:60]!r}"
    if referent is not None and np.asarray(referent).any():
        title += " (cyan: referent)"
    fig.suptitle(title, fontsize=7)
    return fig, axes


def plot_oracle_ablation(grounding_summary: pd.DataFrame, metric: str = "ciou", ax=None):
    """``metric`` against the token budget per method (eval-grounding summary.csv); oracles dashed,
    the unpruned model as a horizontal line."""
    if ax is None:
        fig, ax = figure(1, 0.8)
    fig = ax.figure
    s = grounding_summary
    base = s["method"].map(is_baseline)
    methods = list(s.loc[~base, "method"].unique())
    for m in methods:
        g = s[s["method"] == m].sort_values("budget")
        oracle = _is_oracle(m)
        ax.plot(g["budget"], g[metric], ms=3, label=m + (" (oracle)" if oracle else ""),
                **{**method_style(m), "ls": "--" if oracle else "-"})
    if base.any():
        ax.axhline(float(s.loc[base, metric].iloc[0]), color="0.3", lw=0.8, ls=":",
                   label="none (all tokens)")
    ax.set_xscale("log", base=2)
    budgets = sorted(s.loc[~base, "budget"].unique())
    ax.set_xticks(budgets)
    ax.set_xticklabels([str(b) for b in budgets])
    ax.set_xlabel("visual tokens kept (K)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=5)
    return fig, ax



def signal_colors(signals) -> dict[str, tuple]:
    """The colour of each CLIP-side signal, the same in every figure of the study: the reversed CLIP ranks in
    LiteLVLM's black, a method's score (``method:X``, or a signal named as a method) in that method's colour,
    the others from the palette."""
    own = {s: _mission_style(s)[1]["color"] for s in signals
           if s == "clip_rev_sim" or s.startswith("method:") or s in TABLE}
    rest = [s for s in signals if s not in own]
    return {**own, **dict(zip(rest, palette(max(len(rest), 1))))}


def _mission_style(signal: str) -> tuple[str, dict]:
    """Legend label and line style of a CLIP-side signal of the mission figure: LiteLVLM's reversed CLIP ranks
    in its own black, each method's score in that method's colour and marker."""
    if signal == "clip_rev_sim":
        return "reversed CLIP ranks (−s, LiteLVLM)", dict(LITELVLM_STYLE)
    name = signal.removeprefix("method:")
    return f"{name}'s own score", method_style(name)


def mission_signals(summary: pd.DataFrame) -> list[str]:
    """The CLIP-side signals of the mission figure in ``summary``: the answer's
    (:func:`analysis.importance.answer.answer_signals`)."""
    return answer.answer_signals(summary)


def _mission_attention(ax, s: pd.DataFrame, signals: list[str], metric: str, num_layers: int) -> bool:
    """The left panel: each signal against attention of the query rows, by LLM layer; a point that holds by
    construction (:func:`analysis.importance.answer.by_construction`) ringed in grey. Returns whether one
    was."""
    ringed = False
    for signal in signals:
        label, style = _mission_style(signal)
        g = s[s["clip_signal"] == signal].sort_values("layer")
        ax.plot(g["layer"], g[f"{metric}_mean"], ms=3, label=label, **style)
        _band(ax, g, "layer", metric, style["color"])
        odd = g[[answer.by_construction(signal, answer.ATTENTION, layer, num_layers) for layer in g["layer"]]]
        if len(odd):
            ax.plot(odd["layer"], odd[f"{metric}_mean"], ls="none", marker="o", ms=8, mfc="none", mec="0.45",
                    mew=1.0, zorder=5, gid="by-construction")
            ringed = True
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("LLM layer", fontsize=7)
    return ringed


def _mission_gradients(ax, s: pd.DataFrame, signals: list[str], metric: str) -> None:
    """The right panel: each signal against each captum attribution (one value, no layer), side by side."""
    grads = [g for g in GRADIENT_SIGNALS if g in set(s["llm_signal"])]
    for i, signal in enumerate(signals):
        label, style = _mission_style(signal)
        for j, grad in enumerate(grads):
            row = s[(s["clip_signal"] == signal) & (s["llm_signal"] == grad)]
            if row.empty:
                continue
            r, x = row.iloc[0], j + 0.5 * (i + 0.5) / len(signals) - 0.25
            wide = int(r.get("n_images", MIN_INTERVAL_N)) >= MIN_INTERVAL_N
            err = [[r[f"{metric}_mean"] - r[f"{metric}_lo"]], [r[f"{metric}_hi"] - r[f"{metric}_mean"]]]
            ax.errorbar([x], [r[f"{metric}_mean"]], yerr=err if wide else None, ls="none", ms=4,
                        marker=style["marker"], color=style["color"], capsize=2, lw=1.0, zorder=3)
    ax.set_xticks(range(len(grads)), [g.replace("_", " ") for g in grads], fontsize=6)
    ax.set_xlim(-0.5, len(grads) - 0.5)
    ax.set_xlabel("captum attribution (no layer)", fontsize=7)


def plot_mission_correlation(summary: pd.DataFrame, metric: str = "spearman", query: str | None = None,
                             area_bin: str = "all", num_layers: int | None = None):
    """The study's question in one figure: the reversed CLIP ranks (LiteLVLM's -s) and each method's own score
    (``--method-signals``) against the LLM's attention from the ``query`` rows by layer (left; by default the
    headline's query, :func:`analysis.importance.answer.answer_query`) and against captum's attributions
    (right), ``metric`` with 95% intervals over images (none under :data:`MIN_INTERVAL_N` images: the title
    says n); a point that holds by construction ringed and said under the legend (``num_layers``: the LLM's,
    the largest layer + 1 when not given). Returns ``(fig, axes)``."""
    s = summary[summary["area_bin"].astype(str) == area_bin]
    signals = mission_signals(s)
    query = query or answer.answer_query(s) or answer.QUERY
    layers = num_layers if num_layers is not None else int(s["layer"].max()) + 1
    ringed = False
    att = s[(s["llm_signal"] == "attention") & (s["query"] == query) & s["clip_signal"].isin(signals)]
    grad = s[s["llm_signal"].isin(GRADIENT_SIGNALS) & s["clip_signal"].isin(signals)]
    panels = [p for p, rows in (("attention", att), ("gradients", grad)) if not rows.empty]
    fig, axes = figure(2, 0.42, ncols=len(panels), sharey=True, squeeze=False,
                       width_ratios=[3, 1.3][:len(panels)] if len(panels) == 2 else None)
    axes = axes[0]
    for ax, panel in zip(axes, panels):
        if panel == "attention":
            ringed = _mission_attention(ax, att, signals, metric, layers)
            ax.set_title(f"vs LLM attention from the [{query}] rows", fontsize=7)
        else:
            _mission_gradients(ax, grad, signals, metric)
            ax.set_title("vs captum saliency", fontsize=7)
        ax.axhline(0, color="0.6", lw=0.6, gid="reference")
    axes[0].set_ylabel(f"{metric} with the LLM's importance", fontsize=7)
    fig.suptitle("Do CLIP's reversed ranks and each method's score agree with the LLM's own importance?\n"
                 f"({_n_note(pd.concat([att, grad]))})", fontsize=7)
    handles = [Line2D([], [], ms=3, label=label, **style) for label, style in map(_mission_style, signals)]
    if ringed:
        handles.append(Line2D([], [], ls="none", marker="o", ms=8, mfc="none", mec="0.45",
                              label=f"ringed: {answer.BY_CONSTRUCTION}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=6)
    return fig, axes
