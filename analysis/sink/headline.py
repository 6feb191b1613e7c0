"""The sink study's answer on screen: the [EOS]->[SOS] share of attention (:func:`sink_headline`), the
ablation's effect (:func:`ablation_headline`) and its per-layer lines (:func:`ablation_lines`)."""

from __future__ import annotations

import pandas as pd

from analysis.common.presentation.screen import estimate
from analysis.common.stats.stats import ci_text


def sink_headline(per_layer: pd.DataFrame) -> list[str]:
    """The [SOS] share of the [EOS] token's attention (over heads) at the text layer where it is largest and
    at the last, against a uniform share, with its interval over sentences and n."""
    if per_layer.empty:
        return []
    rows = per_layer.sort_values("layer")
    shown = rows.loc[sorted({rows["sos_mean"].idxmax(), rows.index[-1]})]
    parts = [f"layer {int(r['layer'])} " + estimate(r["sos_mean"], r["sos_ci_low"], r["sos_ci_high"],
                                                   int(r["n_sentences"]), unit="sentences")
             + f" (uniform {r['uniform_mean']:.3f})" for _, r in shown.iterrows()]
    which = "largest and last" if len(shown) > 1 else "largest, the last"
    return [f"[EOS]->[SOS] share of attention, n = {int(rows['n_sentences'].iloc[0])} sentences ({which} "
            f"of {len(rows)} text layers): " + "; ".join(parts)]


def ablation_headline(abl_sum: pd.DataFrame | None) -> list[str]:
    """The ablation's effect at the deepest vision layer studied: the reversed AUROC of each text variant
    against the original text's (paired change and Wilcoxon p), with intervals over images and n."""
    if abl_sum is None or abl_sum.empty:
        return []
    rows = abl_sum[abl_sum["breakdown"] == "all"]
    rows = rows[rows["layer"] == rows["layer"].max()]
    rows = rows.sort_values("variant", key=lambda v: v != "original", kind="stable")
    parts = []
    for _, r in rows.iterrows():
        p = "" if pd.isna(r["paired_wilcoxon_p"]) else f", paired Wilcoxon p = {r['paired_wilcoxon_p']:.2g}"
        delta = "" if pd.isna(r["delta_vs_original"]) else f" ({r['delta_vs_original']:+.3f}{p})"
        parts.append(f"{r['variant']} " + estimate(r["auroc_reversed_mean"], r["auroc_reversed_ci_low"],
                                                   r["auroc_reversed_ci_high"], int(r["n_images"]),
                                                   unit="images") + delta)
    first = rows.iloc[0]
    return [f"ablation, AUROC of reversed similarity at vision layer {int(first['layer'])}, "
            f"n = {int(first['n_sentences'])} sentences on {int(first['n_images'])} images:",
            "  " + "; ".join(parts)]


def ablation_lines(abl_sum: pd.DataFrame) -> str:
    """The ablation's result for the terminal: per vision layer, the mean reversed AUROC (95% CI) of each text
    variant, over all sentences, and its paired change against the original text."""
    rows = abl_sum[abl_sum["breakdown"] == "all"]
    lines = ["ablation: AUROC of reversed similarity (mean, 95% CI) per vision layer and text variant "
             "(ablation_summary.csv):"]
    for layer, g in rows.groupby("layer", sort=True):
        parts = []
        for _, r in g.sort_values("variant", key=lambda v: v != "original", kind="stable").iterrows():
            delta = "" if pd.isna(r["delta_vs_original"]) else f", {r['delta_vs_original']:+.3f} vs original"
            ci = ci_text(r["auroc_reversed_ci_low"], r["auroc_reversed_ci_high"], n=r.get("n_images"))
            parts.append(f"{r['variant']} {r['auroc_reversed_mean']:.3f} {ci}{delta}")
        lines.append(f"  layer {layer}: " + "; ".join(parts))
    return "\n".join(lines)

