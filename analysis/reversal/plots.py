"""Study 1, similarity reversal: similarity maps with the referent, AUROC per layer, breakdowns."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from PIL import Image

from analysis.common.presentation.style import apply_style, fig_ax, figsize, palette
from analysis.common.stats.bootstrap import MIN_UNITS

__all__ = ["model_input_view", "plot_similarity_map", "plot_auroc_by_layer", "plot_reversal_breakdown"]


#: groups drawn as vertical bars; more become horizontal bars, one label per line
MAX_VERTICAL_BARS = 12
#: the most characters a breakdown's labels take together, level under their bars, on a one-column figure
MAX_LEVEL_LABEL_CHARS = 28
#: the fewest units (images where the table counts them, else sentences) an interval is drawn over (the
#: statistics' own rule)
MIN_INTERVAL_N = MIN_UNITS


def _units(d: pd.DataFrame) -> np.ndarray:
    """Each row's number of resampled units: ``n_images`` where the table has it, else ``n_sentences`` (every
    row counted as enough when neither is recorded)."""
    for col in ("n_images", "n_sentences"):
        if col in d:
            return d[col].fillna(0).to_numpy(dtype=float)
    return np.full(len(d), float(MIN_INTERVAL_N))


def _unit_name(d: pd.DataFrame) -> str:
    return "images" if "n_images" in d else "sentences"


def model_input_view(image, mask: np.ndarray, params) -> tuple[np.ndarray, np.ndarray]:
    """The image (float RGB in [0, 1]) and mask as the model sees them: padded, resized and cropped by
    ``params``."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    oh, ow = params.out
    (y0, y1), (x0, x1) = params.to_original(np.array([0.0, oh]), np.array([0.0, ow]))
    box = (float(x0), float(y0), float(x1), float(y1))
    view = np.asarray(
        im.convert("RGB").transform((ow, oh), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR))
    m = Image.fromarray(np.asarray(mask, np.uint8) * 255)
    mview = np.asarray(m.transform((ow, oh), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)) >= 128
    return view.astype(float) / 255.0, mview


def plot_similarity_map(image, mask: np.ndarray, similarity: np.ndarray, params, k: int = 32, ax=None,
                        title: str | None = None, alpha: float = 0.55):
    """Patch-text similarity over the model input, the referent's contour, and the k lowest / highest tokens.

    ``similarity`` is (rows, cols) or flat; the lowest-similarity tokens are the ones the
    pruning keeps (downward triangles), the highest are drawn as upward triangles.
    """
    fig, ax = fig_ax(ax, (1, 0.85))
    view, mview = model_input_view(image, mask, params)
    oh, ow = params.out
    sim = np.asarray(similarity, float)
    rows, cols = sim.shape if sim.ndim == 2 else (int(round(np.sqrt(sim.size))),) * 2
    sim = sim.reshape(rows, cols)
    ax.imshow(view, extent=(0, ow, oh, 0))
    hm = ax.imshow(sim, cmap="coolwarm", alpha=alpha, extent=(0, ow, oh, 0), interpolation="nearest")
    if mview.any() and not mview.all():
        ax.contour(np.arange(ow) + 0.5, np.arange(oh) + 0.5, mview.astype(float), levels=[0.5],
                   colors="black", linewidths=1.5)
    k = min(k, sim.size // 2)
    order = np.argsort(sim.reshape(-1), kind="stable")
    cy = (np.arange(rows) + 0.5) * oh / rows
    cx = (np.arange(cols) + 0.5) * ow / cols
    lo_c, hi_c = palette(2)
    for idx, marker, color, label in ((order[:k], "v", lo_c, f"{k} lowest (kept)"),
                                      (order[-k:], "^", hi_c, f"{k} highest")):
        r, c = np.divmod(idx, cols)
        ax.scatter(cx[c], cy[r], marker=marker, s=max(4, 1600 / sim.size), color=color, edgecolors="white",
                   linewidths=0.4, label=label)
    ax.set_xlim(0, ow)
    ax.set_ylim(oh, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper right", fontsize="x-small", framealpha=0.7)
    fig.colorbar(hm, ax=ax, shrink=0.8, label="similarity s")
    if title:
        ax.set_title(title, fontsize="small")
    return fig, ax


def plot_auroc_by_layer(summary: pd.DataFrame, ax=None, value: str = "auroc_reversed"):
    """AUROC_reversed (mean with its 95% CI over images) against vision layer, one line per model (runs
    measured in an LLM's input space, ``space == "llm"``, have no vision layer and are left to
    :func:`plot_space_auroc`)."""
    own = ax is None  # the figure is this function's: its legend may stand under it
    fig, ax = fig_ax(ax)
    d = summary[summary["breakdown"] == "all"] if "breakdown" in summary else summary
    d = d[d["space"] != "llm"] if "space" in d else d
    models = list(dict.fromkeys(d["model"])) if "model" in d else [None]
    for model, color in zip(models, palette(len(models))):
        sub = d if model is None else d[d["model"] == model]
        sub = sub.sort_values("layer")
        ax.plot(sub["layer"], sub[f"{value}_mean"], marker="o", color=color, label=model)
        ok = _units(sub) >= MIN_INTERVAL_N  # no interval over fewer units
        if ok.any():
            ax.fill_between(sub["layer"], sub[f"{value}_ci_low"].where(ok), sub[f"{value}_ci_high"].where(ok),
                            color=color, alpha=0.2)
    few = d[_units(d) < MIN_INTERVAL_N]
    if len(few):
        ax.set_title(f"no interval where n < {MIN_INTERVAL_N} {_unit_name(d)} "
                     f"(n = {int(_units(few).min())})", fontsize="x-small")
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("vision layer (index into hidden_states)")
    ax.set_ylabel("AUROC of -s for the referent")
    if own and max(len(str(m)) for m in models) > 24:
        # long labels (a grid named) beside the axes would leave them no room: the legend under the figure
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize="small")
    else:
        ax.legend(fontsize="small")
    return fig, ax


def plot_reversal_breakdown(summary: pd.DataFrame, breakdown: str = "area_bin", layer: int | None = None,
                            ax=None, value: str = "auroc_reversed", model: str | None = None):
    """AUROC_reversed by group of ``breakdown`` (area_bin, category, length_bin, split) at one layer, with
    CIs.

    With several models in ``summary``, ``model`` picks one (default: the first). More than
    :data:`MAX_VERTICAL_BARS` groups (COCO's 80 categories) are drawn as horizontal bars on a figure as tall
    as they need, so no two labels overlap.
    """
    d = summary[summary["breakdown"] == breakdown]
    if "model" in d and d["model"].nunique() > 1:
        d = d[d["model"] == (model or d["model"].iloc[0])]
    layer = int(d["layer"].max()) if layer is None else layer
    d = d[d["layer"] == layer]
    if breakdown == "category":
        d = d.sort_values(f"{value}_mean", ascending=False)
    horizontal = len(d) > MAX_VERTICAL_BARS
    if horizontal and ax is None:  # one line of text per group: 0.13 in each
        apply_style()
        fig, ax = plt.subplots(figsize=figsize(1, height=0.8 + 0.13 * len(d)), layout="constrained")
    fig, ax = fig_ax(ax)
    x = np.arange(len(d))
    mean = d[f"{value}_mean"].to_numpy()
    n = _units(d)
    # no interval over fewer than MIN_INTERVAL_N units: each bar says its n instead
    err = np.abs(np.stack([mean - d[f"{value}_ci_low"].to_numpy(), d[f"{value}_ci_high"].to_numpy() - mean]))
    err[:, (n < MIN_INTERVAL_N) | ~np.isfinite(err).all(axis=0)] = np.nan
    drawn = np.isfinite(err).all(axis=0)
    label = f"AUROC of -s (layer {layer})" + ("" if drawn.all() else
                                              f"\nno interval where n < {MIN_INTERVAL_N} {_unit_name(d)}")
    label += f"\nn on each bar: {_unit_name(d)}"
    name = {"area_bin": "mask area (fraction of the image)", "length_bin": "sentence length (words)"}.get(
        breakdown, breakdown)
    if horizontal:
        ax.barh(x, mean, color=palette(1)[0], height=0.7)
        if drawn.any():
            ax.errorbar(mean[drawn], x[drawn], xerr=err[:, drawn], ls="none", color="black", capsize=1.5,
                        lw=0.8)
        for xi, ni in zip(x, n):
            ax.text(0.02, xi, f"n={int(ni)}", ha="left", va="center", fontsize="xx-small", color="white")
        ax.axvline(0.5, color="grey", ls="--", lw=1)
        ax.set_yticks(x, d["group"], fontsize="x-small")
        ax.invert_yaxis()  # the highest first, as in the vertical layout
        ax.set_xlim(0, 1)
        ax.set_xlabel(label)
        ax.set_ylabel(name)
        return fig, ax
    ax.bar(x, mean, color=palette(1)[0])
    if drawn.any():
        ax.errorbar(x[drawn], mean[drawn], yerr=err[:, drawn], ls="none", color="black", capsize=2, lw=0.8)
    for xi, ni in zip(x, n):
        ax.text(xi, 0.02, f"n={int(ni)}", ha="center", va="bottom", fontsize="xx-small", color="white")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    # slanted when the labels would not fit side by side (four area bins' intervals already touch)
    slant = len(d) > 4 or sum(len(str(g)) for g in d["group"]) > MAX_LEVEL_LABEL_CHARS
    ax.set_xticks(x, d["group"], rotation=45 if slant else 0, ha="right" if slant else "center")
    ax.set_ylim(0, 1)
    ax.set_xlabel(name)
    ax.set_ylabel(label)
    return fig, ax


def plot_space_auroc(summary: pd.DataFrame, ax=None, value: str = "auroc_reversed"):
    """AUROC_reversed (mean with its 95% CI over images) per run: a run in the LLM's input space (``space ==
    "llm"``, one score per token) beside each CLIP run at its last layer, one row per run."""
    fig, ax = fig_ax(ax, size=(2, 0.35))
    d = summary[summary["breakdown"] == "all"]
    d = d[d["layer"] == d.groupby("model")["layer"].transform("max")].reset_index(drop=True)
    y = np.arange(len(d))
    mean = d[f"{value}_mean"].to_numpy(dtype=float)
    err = np.abs(np.vstack([mean - d[f"{value}_ci_low"], d[f"{value}_ci_high"] - mean]))
    n = _units(d)
    err[:, n < MIN_INTERVAL_N] = np.nan   # no interval over fewer units, whatever the table holds
    colors = palette(2)
    for i, row in d.iterrows():
        llm = row.get("space", "clip") == "llm"
        ax.errorbar(mean[i], y[i], xerr=None if np.isnan(err[:, i]).any() else err[:, [i]], fmt="o",
                    capsize=3, color=colors[0 if llm else 1])
    names = [str(m) if sp == "llm" else f"{m}, layer {int(la)}"
             for m, sp, la in zip(d["model"], d.get("space", ["clip"] * len(d)), d["layer"])]
    ax.set_yticks(y, names, fontsize="x-small")
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 1)
    lo, hi, unit = int(n.min()), int(n.max()), _unit_name(d)
    note = f"\nno interval where n < {MIN_INTERVAL_N} {unit}" if lo < MIN_INTERVAL_N else ""
    ax.set_xlabel(f"AUROC of -s for the referent (n = {lo}{f'-{hi}' if hi > lo else ''} {unit}){note}")
    return fig, ax
