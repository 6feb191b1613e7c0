"""Quantization figures: the budget x precision trade-off of ``validate`` runs (one folder per
``--quantize``).

Each figure draws one device's runs (times and memory from different devices are never mixed) and one
line per precision: LiteLVLM's rows against the budget, and ``none`` (all tokens) as an open marker at N. The
unquantized run's dtype in the legends and labels is the one its ``config.json`` records (the table's
``model_dtype`` column, :func:`analysis.quantization.figure_set.read_quantization_runs`).
"""

from __future__ import annotations

import pandas as pd

from analysis.common.presentation.style import budget_axis, figure, palette
from litelvlm.methods import is_baseline

#: precisions in drawing order, with their legend names (``{dtype}``: the run's recorded ``model_dtype``)
PRECISIONS = {"none": "{dtype} (not quantized)", "int8": "int8 decoder layers", "nf4": "nf4 decoder layers"}
#: what a run that records no dtype is called
UNKNOWN_DTYPE = "unquantized, dtype not recorded"


def unquantized_dtype(d: pd.DataFrame) -> str:
    """The dtype the unquantized (``quantize`` none) rows of ``d`` record (``model_dtype``), e.g.
    ``float32``."""
    rows = d[d["quantize"] == "none"] if "quantize" in d else d
    found = list(dict.fromkeys(str(v) for v in rows.get("model_dtype", pd.Series(dtype=object)).dropna()))
    return "/".join(found) if found else UNKNOWN_DTYPE


def precision_label(d: pd.DataFrame, q: str) -> str:
    """The legend name of precision ``q`` in ``d``: the unquantized one by its recorded dtype."""
    if q == "none":
        dtype = unquantized_dtype(d)
        return f"{dtype} (not quantized)" if dtype != UNKNOWN_DTYPE else dtype
    return PRECISIONS.get(q, q)


def _precisions(d: pd.DataFrame) -> list[str]:
    found = list(d["quantize"].unique())
    return [q for q in PRECISIONS if q in found] + sorted(q for q in found if q not in PRECISIONS)


def _by_precision(ax, d: pd.DataFrame, y: str, scale: float = 1.0, method: str = "litelvlm") -> None:
    """One line per precision: ``method``'s ``y`` against the budget, and ``none`` at N as an open marker."""
    colors = dict(zip(_precisions(d), palette(max(len(_precisions(d)), 1))))
    for q in _precisions(d):
        g = d[(d["quantize"] == q) & (d["method"] == method)].sort_values("budget")
        ax.plot(g["budget"], g[y] * scale, marker="o", color=colors[q], label=precision_label(d, q))
        base = d[(d["quantize"] == q) & d["method"].map(is_baseline)]
        ax.scatter(base["budget"], base[y] * scale, marker="o", facecolors="none", edgecolors=colors[q], s=60,
                   zorder=5)
    budget_axis(ax, d["budget"])
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7,
              title=f"{method} (open: none, all tokens)", title_fontsize=7)


def varied(d: pd.DataFrame) -> bool:
    """Whether the rows of ``d`` hold more than one precision (else no figure is titled by precision)."""
    return d["quantize"].nunique() > 1


def _panel(table: pd.DataFrame, device: str | None, ax, column: str, ylabel: str, title: str,
           scale: float = 1.0):
    """One device's rows of ``table``: ``column`` (times ``scale``) against the budget, one line per
    precision."""
    device = device if device is not None else str(table["device"].iloc[0])
    d = table[table["device"] == device]
    fig, ax = (ax.figure, ax) if ax is not None else figure(2, aspect=0.42)
    _by_precision(ax, d, column, scale=scale)
    ax.set_ylabel(ylabel)
    if varied(d):
        ax.set_title(f"{title} by precision and budget ({device})")
    else:  # one run, not quantized or quantized one way: the budget is all it varied
        only = precision_label(d, d["quantize"].iloc[0])
        ax.set_title(f"{title} by budget ({device}; one precision, {only}: no other run to compare)",
                     fontsize=7)
    return fig, ax


def plot_memory_vs_precision(mem: pd.DataFrame, device: str | None = None, ax=None):
    """Whole-model memory during a call (weights + activation peak) against the budget, per precision."""
    gib = mem["peak_mb"].max() >= 1024  # GiB at full size, MiB for small models
    fig, ax = _panel(mem, device, ax, "peak_mb", f"whole-model memory ({'GiB' if gib else 'MiB'})", "Memory",
                     scale=1 / 1024 if gib else 1.0)
    ax.set_ylim(bottom=0)   # a quantity of memory from zero: no small change drawn as a large one
    return fig, ax


def plot_activation_vs_precision(mem: pd.DataFrame, device: str | None = None, ax=None):
    """The LLM span's activation peak (MiB) against the budget, per precision."""
    fig, ax = _panel(mem, device, ax, "llm_activation_mb", "LLM activation peak (MiB)", "Activation")
    ax.set_ylim(bottom=0)
    return fig, ax


def plot_prefill_vs_precision(rows: pd.DataFrame, device: str | None = None, ax=None):
    """The paper's prefill time (the decoder-layer loop, ms) against the budget, per precision."""
    return _panel(rows, device, ax, "paper_prefill_ms", "prefill, decoder-layer loop (ms)", "Prefill")


def plot_mask_agreement_vs_precision(rows: pd.DataFrame, device: str | None = None, ax=None):
    """IoU of each run's masks with the unquantized, unpruned masks (``validate --compare-to``) against the
    budget, per precision: 1.0 is the same masks; ``none`` (open marker) is quantization alone."""
    fig, ax = _panel(rows, device, ax, "mask_iou_vs_compare", f"mask IoU with {unquantized_dtype(rows)}, all "
                     "tokens", "Mask agreement")
    ax.set_ylim(-0.02, 1.02)
    return fig, ax


__all__ = ["PRECISIONS", "precision_label", "unquantized_dtype", "plot_activation_vs_precision",
           "plot_mask_agreement_vs_precision", "plot_memory_vs_precision", "plot_prefill_vs_precision"]
