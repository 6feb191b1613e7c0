"""Efficiency figures: LLM FLOPs, prefill speedup and activation memory against the visual-token budget,
with the paper's numbers and the FLOPs-ideal (or token-count-ideal) limit drawn in."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..eff.compare import PAPER  # noqa: E402

_PAPER_STYLE = dict(marker="*", s=90, color="k", zorder=5, label="paper (LiteLVLM)")


def _setup(ax, attn: str | None, df: pd.DataFrame):
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.2, 3.0))
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
    for method, g in d[d["method"] != "none"].groupby("method", sort=True):
        yield method, g.sort_values("budget")


def plot_flops_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """LLM FLOPs relative to the 576-token baseline, per method; paper's ratios as stars. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    base = float(d.loc[d["method"] == "none", "llm_tflops_measured"].iloc[0]) if (d["method"] == "none").any() \
        else float(d["llm_tflops_measured"].max())
    for method, g in _methods(d):
        ax.plot(g["budget"], g["llm_tflops_measured"] / base, marker="o", ms=3, label=method)
    pk = [k for k in PAPER["flops_tb"] if k != 576]
    ax.scatter(pk, [PAPER["flops_tb"][k] / PAPER["flops_tb"][576] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel("LLM FLOPs / baseline")
    ax.set_title(f"LLM prefill FLOPs ({d['arch'].iloc[0] if 'arch' in d else ''})")
    ax.legend(fontsize=6)
    return fig, ax


def plot_prefill_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Measured prefill speedup per method, the FLOPs-ideal speedup (dashed) and the paper's. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    ideal = d[d["method"] != "fastv"].groupby("budget")["flops_ideal_speedup"].first()
    ax.plot(ideal.index, ideal.values, "k--", lw=1, label="FLOPs-ideal (CLIP-side pruning)")
    for method, g in _methods(d):
        ax.plot(g["budget"], g["prefill_speedup"], marker="o", ms=3, label=method)
    pk = [k for k in PAPER["prefill_ms"] if k != 576]
    ax.scatter(pk, [PAPER["prefill_ms"][576] / PAPER["prefill_ms"][k] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel("prefill speedup vs 576 tokens")
    dev = d["device"].iloc[0] if "device" in d else ""
    ax.set_title(f"LLM prefill speedup ({attn}, {dev})", fontsize=7)
    ax.legend(fontsize=6)
    return fig, ax


def plot_memory_vs_budget(df: pd.DataFrame, ax=None, attn: str | None = None):
    """Activation-memory reduction per method (measured on the device where available, else on meta),
    the token-count limit (dashed) and the paper's. Returns (fig, ax)."""
    fig, ax, d, attn = _setup(ax, attn, df)
    col = "act_reduction" if "act_reduction" in d and d["act_reduction"].notna().any() else "meta_act_reduction"
    base_n = float(d.loc[d["method"] == "none", "n_tokens"].iloc[0]) if (d["method"] == "none").any() \
        else float(d["n_tokens"].max())
    lim = d[d["method"] != "fastv"].groupby("budget")["n_tokens"].first()
    ax.plot(lim.index, base_n / lim.values, "k--", lw=1, label="token-count limit")
    for method, g in _methods(d):
        ax.plot(g["budget"], g[col], marker="o", ms=3, label=method)
    pk = [k for k in PAPER["activations_gb"] if k != 576]
    ax.scatter(pk, [PAPER["activations_gb"][576] / PAPER["activations_gb"][k] for k in pk], **_PAPER_STYLE)
    _budget_axis(ax, d)
    ax.set_ylabel("activation memory reduction")
    src = "measured" if col == "act_reduction" else "meta-device count"
    ax.set_title(f"LLM activation memory ({attn}, {src})", fontsize=7)
    ax.legend(fontsize=6)
    return fig, ax
