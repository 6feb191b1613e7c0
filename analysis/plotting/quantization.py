"""Quantization figures: the budget x precision trade-off of ``validate`` runs (one folder per ``--quantize``).

Each figure draws one device's runs (times and memory from different devices are never mixed) and one
line per precision: LiteLVLM's rows against the budget, and ``none`` (all tokens) as an open marker at N.
"""

from __future__ import annotations

import pandas as pd

from ..style import figure, palette

#: precisions in drawing order, with their legend names
PRECISIONS = {"none": "bf16 (not quantized)", "int8": "int8 decoder layers", "nf4": "nf4 decoder layers"}


def _precisions(d: pd.DataFrame) -> list[str]:
    found = list(d["quantize"].unique())
    return [q for q in PRECISIONS if q in found] + sorted(q for q in found if q not in PRECISIONS)


def _budget_axis(ax, d: pd.DataFrame) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(d["budget"].unique())
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("visual tokens kept (K)")


def _by_precision(ax, d: pd.DataFrame, y: str, scale: float = 1.0, method: str = "litelvlm") -> None:
    """One line per precision: ``method``'s ``y`` against the budget, and ``none`` at N as an open marker."""
    colors = dict(zip(_precisions(d), palette(max(len(_precisions(d)), 1))))
    for q in _precisions(d):
        g = d[(d["quantize"] == q) & (d["method"] == method)].sort_values("budget")
        ax.plot(g["budget"], g[y] * scale, marker="o", color=colors[q], label=PRECISIONS.get(q, q))
        base = d[(d["quantize"] == q) & (d["method"] == "none")]
        ax.scatter(base["budget"], base[y] * scale, marker="o", facecolors="none", edgecolors=colors[q], s=60,
                   zorder=5)
    _budget_axis(ax, d)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
              title=f"{method} (open: none, all tokens)", title_fontsize=7)


def _device(d: pd.DataFrame, device: str | None) -> tuple[pd.DataFrame, str]:
    device = device if device is not None else str(d["device"].iloc[0])
    return d[d["device"] == device], device


def plot_memory_vs_precision(mem: pd.DataFrame, device: str | None = None, ax=None):
    """Whole-model memory during a call (weights + activation peak, GiB) against the budget, per precision."""
    d, device = _device(mem, device)
    fig, ax = (ax.figure, ax) if ax is not None else figure(2, aspect=0.42)
    gib = d["peak_mb"].max() >= 1024  # GiB at full size, MiB for small models
    _by_precision(ax, d, "peak_mb", scale=1 / 1024 if gib else 1.0)
    ax.set_ylabel(f"whole-model memory ({'GiB' if gib else 'MiB'})")
    ax.set_title(f"Memory by precision and budget ({device})")
    return fig, ax


def plot_activation_vs_precision(mem: pd.DataFrame, device: str | None = None, ax=None):
    """The LLM span's activation peak (MiB) against the budget, per precision."""
    d, device = _device(mem, device)
    fig, ax = (ax.figure, ax) if ax is not None else figure(2, aspect=0.42)
    _by_precision(ax, d, "llm_activation_mb")
    ax.set_ylabel("LLM activation peak (MiB)")
    ax.set_title(f"Activation by precision and budget ({device})")
    return fig, ax


def plot_prefill_vs_precision(rows: pd.DataFrame, device: str | None = None, ax=None):
    """The paper's prefill time (the decoder-layer loop, ms) against the budget, per precision."""
    d, device = _device(rows, device)
    fig, ax = (ax.figure, ax) if ax is not None else figure(2, aspect=0.42)
    _by_precision(ax, d, "paper_prefill_ms")
    ax.set_ylabel("prefill, decoder-layer loop (ms)")
    ax.set_title(f"Prefill by precision and budget ({device})")
    return fig, ax


__all__ = ["PRECISIONS", "plot_activation_vs_precision", "plot_memory_vs_precision", "plot_prefill_vs_precision"]
