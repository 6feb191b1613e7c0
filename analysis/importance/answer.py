"""The study's answer, as the screen's headline and the mission figure both give it: for LiteLVLM's reversed
CLIP ranks and each method's own score, the Spearman correlation with the LLM's attention at EVERY layer
studied (from one query's rows, the same in the headline and the figure: :func:`answer_query`) and with each
captum attribution, with 95% intervals over images and n. A correlation that holds by construction, a
method's score against the attention of a layer the method itself ranks by (``Method.attention_layers``), is
labelled so (:func:`by_construction`), never shown as a finding."""

from __future__ import annotations

import pandas as pd

from analysis.common.presentation.screen import estimate
from litelvlm.methods import TABLE, get_method

#: the query whose attention rows the answer reads when the run holds it: the [SEG] token's, the one whose
#: hidden state becomes the mask
QUERY = "seg"
#: what a correlation that holds by construction is labelled with, on screen and in the figure
BY_CONSTRUCTION = "by construction: the method ranks by this layer's attention"
#: the LLM-side signal the per-layer answer reads
ATTENTION = "attention"


def answer_query(summary: pd.DataFrame) -> str | None:
    """The query of the attention rows the answer reads: :data:`QUERY` where the run has it, else the first
    query it has (None: no attention rows)."""
    queries = summary.loc[summary["llm_signal"] == ATTENTION, "query"].dropna()
    if queries.empty:
        return None
    return QUERY if (queries == QUERY).any() else str(sorted(set(queries))[0])


def answer_signals(summary: pd.DataFrame) -> list[str]:
    """The CLIP-side signals the answer is about: the reversed CLIP ranks (``clip_rev_sim``), then each
    method's own score (``method:NAME``), in the order the run lists them."""
    found = list(dict.fromkeys(summary["clip_signal"]))
    return [s for s in found if s == "clip_rev_sim"] + sorted(s for s in found if s.startswith("method:"))


def by_construction(signal: str, llm_signal: str, layer: int, num_layers: int) -> bool:
    """Whether ``signal`` (``method:NAME``) agrees with ``llm_signal`` at ``layer`` by construction: the
    method ranks the tokens by that layer's attention weights (``Method.attention_layers`` on
    ``num_layers``)."""
    name = signal.removeprefix("method:")
    if not signal.startswith("method:") or llm_signal != ATTENTION or name not in TABLE:
        return False
    return int(layer) in get_method(name).attention_layers(int(num_layers))


def signal_name(signal: str) -> str:
    """How the answer names a CLIP-side signal."""
    return "reversed CLIP similarity" if signal == "clip_rev_sim" else \
        f"{signal.removeprefix('method:')}'s score"


def _value(r: pd.Series) -> str:
    return estimate(r["spearman_mean"], r["spearman_lo"], r["spearman_hi"], int(r["n_images"]), unit="images")


def importance_headline(summary: pd.DataFrame, num_layers: int | None = None) -> list[str]:
    """The answer in a few lines (see the module): a line per CLIP-side signal and LLM-side signal, attention
    by layer (``L0 rho [lo, hi]; L1 ...``) from :func:`answer_query`'s rows, each attribution as one value;
    ``num_layers``: the LLM's layers (the largest layer studied + 1 when not given)."""
    rows = summary[(summary["area_bin"] == "all") & summary["spearman_mean"].notna()]
    signals = answer_signals(rows)
    if not signals:
        return []
    query = answer_query(rows)
    layers = num_layers if num_layers is not None else int(rows["layer"].max()) + 1
    first = rows.iloc[0]
    lines = [f"Spearman rho with the LLM's importance, attention from the [{query}] rows at every layer and "
             f"each captum attribution, 95% intervals over images; n = {int(first['n_sentences'])} sentences "
             f"on {int(first['n_images'])} images:"]
    marked = False
    for signal in signals:
        mine = rows[rows["clip_signal"] == signal]
        for llm, g in mine.groupby("llm_signal", sort=False):
            if llm == ATTENTION:
                g = g[g["query"] == query].sort_values("layer")
                parts = []
                for _, r in g.iterrows():
                    odd = by_construction(signal, llm, int(r["layer"]), layers)
                    marked |= odd
                    parts.append(f"L{int(r['layer'])} {_value(r)}" + (" *" if odd else ""))
                lines.append(f"  {signal_name(signal)} vs attention [{query}]: " + "; ".join(parts))
            elif len(g) == 1:
                lines.append(f"  {signal_name(signal)} vs {llm}: {_value(g.iloc[0])}")
            else:   # an attribution taken at several layers
                lines.append(f"  {signal_name(signal)} vs {llm}: " + "; ".join(
                    f"L{int(r['layer'])} {_value(r)}" for _, r in g.sort_values("layer").iterrows()))
    if marked:
        lines.append(f"  * {BY_CONSTRUCTION}, not a finding")
    return lines
