"""``efficiency``'s headline: LiteLVLM against the unpruned baseline, per budget, as ratios, each at the LLM
sequence lengths it was measured at."""

from __future__ import annotations

import pandas as pd

from analysis.common.stats.accuracy_stats import LITELVLM
from litelvlm.methods import is_baseline


def efficiency_headline(df: pd.DataFrame, arch: str, repeats: int) -> list[str]:
    """LiteLVLM against ``none`` per budget, largest first (the first attention kernel and arrangement): fewer
    FLOPs, faster prefill (median of ``repeats`` rounds, with the range of the per-round ratios) and lower
    activation memory, as ratios, each at the LLM sequence lengths it was measured at (none's and the run's:
    a ratio depends on the prompt's length)."""
    rows = df[df["method"] == LITELVLM] if "method" in df else df.iloc[:0]   # the paper's subject
    kind = [f"{c} {rows[c].dropna().iloc[0]}" for c in ("attn", "arrangement")
            if c in rows and rows[c].notna().any()]
    for c in ("attn", "arrangement"):
        rows = rows[rows[c] == rows[c].dropna().iloc[0]] if c in rows and rows[c].notna().any() else rows
    rows = rows[rows["budget"] < df["budget"].max()].sort_values("budget", ascending=False)   # not all N
    if rows.empty:
        return []
    base = df[df["method"].map(is_baseline)] if "n_tokens" in df else []
    full = f" at none's sequence of {int(base['n_tokens'].iloc[0])} LLM tokens" if len(base) else ""
    lines = [f"LiteLVLM against none on {arch} (random weights{''.join(', ' + k for k in kind)}), "
             f"ratios{full}:"]
    for _, r in rows.iterrows():
        said = [f"FLOPs {r['flops_ideal_speedup']:.2f}x fewer"]
        if pd.notna(r.get("prefill_speedup")):
            spread = (f" [{r['prefill_speedup_min']:.2f}, {r['prefill_speedup_max']:.2f}] (min-max over "
                      f"{repeats} rounds)" if pd.notna(r.get("prefill_speedup_min")) else "")
            said.append(f"prefill {r['prefill_speedup']:.2f}x faster{spread}")
        if pd.notna(r.get("act_reduction")):
            said.append(f"activations {r['act_reduction']:.2f}x lower")
        seq = f" ({int(r['n_tokens'])} tokens)" if pd.notna(r.get("n_tokens")) else ""
        lines.append(f"  K={int(r['budget'])}{seq}: " + ", ".join(said))
    return lines
