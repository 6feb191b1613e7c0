"""The two CLIP studies: similarity maps with the referent, AUROC per layer, breakdowns, the [EOS] sink, the ablation."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator
from PIL import Image

from analysis.style import apply_style, figsize, palette

__all__ = ["model_input_view", "plot_similarity_map", "plot_auroc_by_layer", "plot_reversal_breakdown",
           "plot_sink_heatmap", "plot_eos_attention_example", "plot_ablation_bars"]


#: groups drawn as vertical bars; more become horizontal bars, one label per line
MAX_VERTICAL_BARS = 12


def _ax(ax, size=(1, 0.75)):
    apply_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize(*size), layout="constrained")
    return ax.figure, ax


def model_input_view(image, mask: np.ndarray, params) -> tuple[np.ndarray, np.ndarray]:
    """The image (float RGB in [0, 1]) and mask as the model sees them: padded, resized and cropped by ``params``."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    oh, ow = params.out
    (y0, y1), (x0, x1) = params.to_original(np.array([0.0, oh]), np.array([0.0, ow]))
    box = (float(x0), float(y0), float(x1), float(y1))
    view = np.asarray(im.convert("RGB").transform((ow, oh), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR))
    m = Image.fromarray(np.asarray(mask, np.uint8) * 255)
    mview = np.asarray(m.transform((ow, oh), Image.Transform.EXTENT, box, Image.Resampling.BILINEAR)) >= 128
    return view.astype(float) / 255.0, mview


def plot_similarity_map(image, mask: np.ndarray, similarity: np.ndarray, params, k: int = 32, ax=None,
                        title: str | None = None, alpha: float = 0.55):
    """Patch-text similarity over the model input, the referent's contour, and the k lowest / highest tokens.

    ``similarity`` is (rows, cols) or flat; the lowest-similarity tokens are the ones the
    pruning keeps (downward triangles), the highest are drawn as upward triangles.
    """
    fig, ax = _ax(ax, (1, 0.85))
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
    """AUROC_reversed (mean with its 95% CI over images) against vision layer, one line per model."""
    fig, ax = _ax(ax)
    d = summary[summary["breakdown"] == "all"] if "breakdown" in summary else summary
    models = list(dict.fromkeys(d["model"])) if "model" in d else [None]
    for model, color in zip(models, palette(len(models))):
        sub = d if model is None else d[d["model"] == model]
        sub = sub.sort_values("layer")
        ax.plot(sub["layer"], sub[f"{value}_mean"], marker="o", color=color, label=model)
        ax.fill_between(sub["layer"], sub[f"{value}_ci_low"], sub[f"{value}_ci_high"], color=color, alpha=0.2)
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("vision layer (index into hidden_states)")
    ax.set_ylabel("AUROC of -s for the referent")
    ax.legend(fontsize="small")
    return fig, ax


def plot_reversal_breakdown(summary: pd.DataFrame, breakdown: str = "area_bin", layer: int | None = None,
                            ax=None, value: str = "auroc_reversed", model: str | None = None):
    """AUROC_reversed by group of ``breakdown`` (area_bin, category, length_bin, split) at one layer, with CIs.

    With several models in ``summary``, ``model`` picks one (default: the first). More than
    :data:`MAX_VERTICAL_BARS` groups (COCO's 80 categories) are drawn as horizontal bars on a figure as tall as
    they need, so no two labels overlap.
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
    fig, ax = _ax(ax)
    x = np.arange(len(d))
    mean = d[f"{value}_mean"].to_numpy()
    err = np.nan_to_num(np.abs(np.stack([mean - d[f"{value}_ci_low"].to_numpy(),
                                         d[f"{value}_ci_high"].to_numpy() - mean])))
    label = f"AUROC of -s (layer {layer})"
    name = {"area_bin": "mask area (fraction of the image)", "length_bin": "sentence length (words)"}.get(
        breakdown, breakdown)
    if horizontal:
        ax.barh(x, mean, color=palette(1)[0], xerr=err, capsize=1.5, height=0.7)
        for xi, n in zip(x, d["n_sentences"]):
            ax.text(0.02, xi, str(n), ha="left", va="center", fontsize="xx-small", color="white")
        ax.axvline(0.5, color="grey", ls="--", lw=1)
        ax.set_yticks(x, d["group"], fontsize="x-small")
        ax.invert_yaxis()  # the highest first, as in the vertical layout
        ax.set_xlim(0, 1)
        ax.set_xlabel(label)
        ax.set_ylabel(name)
        return fig, ax
    ax.bar(x, mean, color=palette(1)[0], yerr=err, capsize=2)
    for xi, n in zip(x, d["n_sentences"]):
        ax.text(xi, 0.02, str(n), ha="center", va="bottom", fontsize="xx-small", color="white")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_xticks(x, d["group"], rotation=45 if len(d) > 4 else 0, ha="right" if len(d) > 4 else "center")
    ax.set_ylim(0, 1)
    ax.set_xlabel(name)
    ax.set_ylabel(label)
    return fig, ax


def plot_sink_heatmap(summary: pd.DataFrame, value: str = "sos_mean", relative: bool = False, ax=None):
    """The mean [EOS] attention share (default: on [SOS]) over text layer x head; ``relative`` divides by 1/n."""
    fig, ax = _ax(ax)
    d = summary[summary["head"] >= 0]
    grid = d.pivot(index="layer", columns="head", values=value)
    if relative:
        grid = grid / d.pivot(index="layer", columns="head", values="uniform_mean")
    im = ax.imshow(grid.to_numpy(), cmap="magma", aspect="auto", origin="lower",
                   vmin=0 if not relative else None, vmax=1 if not relative else None)
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("head")
    ax.set_ylabel("text layer (block)")
    label = {"sos_mean": "[EOS]->[SOS]", "eos_mean": "[EOS]->[EOS]", "content_sum_mean": "[EOS]->content"}
    fig.colorbar(im, ax=ax, label=label.get(value, value) + (" / uniform" if relative else " share"))
    return fig, ax


def plot_eos_attention_example(example: pd.DataFrame, text_index: int | None = None, ax=None):
    """One sentence's head-averaged [EOS] attention over its tokens, one row per text layer."""
    fig, ax = _ax(ax)
    text_index = int(example["text_index"].min()) if text_index is None else text_index
    d = example[example["text_index"] == text_index]
    grid = d.pivot(index="layer", columns="position", values="attention")
    tokens = d.drop_duplicates("position").sort_values("position")["token"].tolist()
    im = ax.imshow(grid.to_numpy(), cmap="Blues", aspect="auto", origin="lower", vmin=0, vmax=1)
    ax.set_xticks(range(len(tokens)), tokens, rotation=60, ha="right", fontsize="x-small")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_ylabel("text layer (block)")
    ax.set_title(f"[EOS] attention: {d['sentence'].iloc[0]!r}", fontsize="small")
    fig.colorbar(im, ax=ax, label="attention (mean over heads)")
    return fig, ax


def plot_ablation_bars(summary: pd.DataFrame, ax=None, value: str = "auroc_reversed"):
    """AUROC_reversed per text representation (original, [SOS] masked, content mean) and layer, with CIs."""
    fig, ax = _ax(ax)
    d = summary[summary["breakdown"] == "all"]
    variants = list(dict.fromkeys(["original", *sorted(v for v in d["variant"].unique() if v != "original")]))
    variants = [v for v in variants if v in set(d["variant"])]
    layers = sorted(d["layer"].unique())
    width = 0.8 / max(len(variants), 1)
    for i, (v, color) in enumerate(zip(variants, palette(len(variants)))):
        sub = d[d["variant"] == v].set_index("layer").reindex(layers)
        mean = sub[f"{value}_mean"].to_numpy()
        err = np.abs(np.stack([mean - sub[f"{value}_ci_low"].to_numpy(), sub[f"{value}_ci_high"].to_numpy() - mean]))
        ax.bar(np.arange(len(layers)) + (i - (len(variants) - 1) / 2) * width, mean, width, yerr=np.nan_to_num(err),
               capsize=2, color=color, label=v)
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_xticks(range(len(layers)), [str(x) for x in layers])
    ax.set_xlabel("vision layer")
    ax.set_ylabel("AUROC of -s for the referent")
    ax.set_ylim(0, 1)
    # beside the axes, never over the bars (they reach any height up to 1)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title="text representation", title_fontsize="x-small")
    return fig, ax
