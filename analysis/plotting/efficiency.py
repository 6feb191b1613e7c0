"""Efficiency figures: LLM FLOPs, prefill speedup, CUDA-time speedup and activation memory against the
visual-token budget, with the paper's numbers (stars) and the FLOPs-ideal limit (dashed) drawn in."""

from __future__ import annotations

import pandas as pd

from ..eff.compare import PAPER
from ..style import figure, method_colors, method_label

_PAPER_STYLE = dict(marker="*", s=90, color="k", zorder=5, label="paper (LiteLVLM)")


def _setup(ax, attn: str | None, df: pd.DataFrame):
    fig, ax = (ax.figure, ax) if ax is not None else figure(1, aspect=0.75)
    if attn is None and "attn" in df:
        attn = df["attn"].iloc[0]
    d = df[df["attn"] == attn] if attn is not None and "attn" in df else df
    return fig, ax, d, attn


def _budget_axis(ax, d: pd.DataFrame) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(d["budget"].unique())
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks])
    ax.set_xlabel("visual tokens kept (K)")


def _methods(d: pd.DataFrame):
    """(method, rows sorted by budget, its fixed colour) for every pruning method."""
    d = d[d["method"] != "none"]
    colors = method_colors(sorted(d["method"].unique()))
    for method, g in d.groupby("method", sort=True):
        yield method, g.sort_values("budget"), colors[method]


def plot_flops_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """LLM FLOPs relative to the 576-token baseline, per method; paper's ratios as stars. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    base = float(d.loc[d["method"] == "none", "llm_tflops_measured"].iloc[0]) if (d["method"] == "none").any() \
        else float(d["llm_tflops_measured"].max())
    for method, g, color in _methods(d):
        ax.plot(g["budget"], g["llm_tflops_measured"] / base, marker="o", ms=3, color=color, label=method_label(method))
    pk = [k for k in PAPER["flops_tb"] if k != 576]
    ax.scatter(pk, [PAPER["flops_tb"][k] / PAPER["flops_tb"][576] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel("LLM FLOPs / baseline")
    ax.set_title(f"LLM prefill FLOPs ({d['arch'].iloc[0] if 'arch' in d else ''})")
    ax.legend(fontsize=6)
    return fig, ax


def _ideal(ax, d: pd.DataFrame) -> None:
    """The FLOPs-ideal speedup of CLIP-side pruning (baseline FLOPs / pruned FLOPs), dashed."""
    ideal = d[d["method"] != "fastv"].groupby("budget")["flops_ideal_speedup"].first()
    ax.plot(ideal.index, ideal.values, "k--", lw=1, label="FLOPs-ideal (CLIP-side pruning)")


def _speedup_plot(df, ax, attn, col: str, paper: str, ylabel: str, title: str):
    fig, ax, d, attn = _setup(ax, attn, df)
    _ideal(ax, d)
    for method, g, color in _methods(d):
        ax.plot(g["budget"], g[col], marker="o", ms=3, color=color, label=method_label(method))
    pk = [k for k in PAPER[paper] if k != 576]
    ax.scatter(pk, [PAPER[paper][576] / PAPER[paper][k] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel(ylabel)
    dev = d["device"].iloc[0] if "device" in d else ""
    ax.set_title(f"{title} ({attn}, {dev})", fontsize=7)
    ax.legend(fontsize=6)
    return fig, ax


def plot_prefill_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Measured prefill speedup per method, the FLOPs-ideal speedup (dashed) and the paper's. Returns (fig, ax)."""
    return _speedup_plot(df, ax, attn, "prefill_speedup", "prefill_ms", "prefill speedup vs 576 tokens",
                         "LLM prefill speedup")


def plot_cuda_time_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """End-to-end CUDA-time speedup per method (GPU rows only), FLOPs-ideal and the paper's. Returns (fig, ax)."""
    col = "e2e_cuda_speedup" if "e2e_cuda_speedup" in df and df["e2e_cuda_speedup"].notna().any() \
        else "cuda_speedup"
    return _speedup_plot(df, ax, attn, col, "cuda_ms", "CUDA-time speedup vs 576 tokens", "CUDA time")


def has_cuda_time(df: pd.DataFrame) -> bool:
    """Whether ``df`` holds CUDA-time measurements (GPU runs)."""
    return any(c in df and df[c].notna().any() for c in ("e2e_cuda_ms", "llm_cuda_ms"))


def plot_memory_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Activation-memory reduction per method (measured on the device where available, else on meta),
    the token-count ratio (dashed; eager attention scales faster, with n²) and the paper's. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    col = "act_reduction" if "act_reduction" in d and d["act_reduction"].notna().any() else "meta_act_reduction"
    base_n = float(d.loc[d["method"] == "none", "n_tokens"].iloc[0]) if (d["method"] == "none").any() \
        else float(d["n_tokens"].max())
    lim = d[d["method"] != "fastv"].groupby("budget")["n_tokens"].first()
    ax.plot(lim.index, base_n / lim.values, "k--", lw=1, label="token-count ratio (linear in n)")
    for method, g, color in _methods(d):
        ax.plot(g["budget"], g[col], marker="o", ms=3, color=color, label=method_label(method))
    pk = [k for k in PAPER["activations_gb"] if k != 576]
    ax.scatter(pk, [PAPER["activations_gb"][576] / PAPER["activations_gb"][k] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel("activation memory reduction")
    src = "measured" if col == "act_reduction" else "meta-device count"
    ax.set_title(f"LLM activation memory ({attn}, {src})", fontsize=7)
    ax.legend(fontsize=6)
    return fig, ax
