"""``eval-video``'s headline: the visual tokens the LLM reads per budget, then J&F per method and budget with
its change from ``none``, its interval and the run's marks of significance."""

from __future__ import annotations

import pandas as pd

from analysis.common.presentation.screen import methods_headline
from litelvlm.methods import is_baseline


def video_headline(summary: pd.DataFrame, arrangement: str,
                   comparisons: pd.DataFrame | None = None) -> list[str]:
    """The answer in a few lines: the visual tokens the LLM reads a prompt per budget (with the arrangement
    that ran, on a family that pools its frames), then J&F per method and budget with its change from
    ``none``, intervals over videos (none under 3) and n, each marked by the run's one criterion against
    ``comparisons`` (comparisons.csv) where given."""
    lines = []
    if "llm_visual_tokens" in summary and summary["llm_visual_tokens"].notna().all():
        by = summary.drop_duplicates("budget")
        tokens = "; ".join(f"{'unpruned' if is_baseline(r['method']) else 'K=' + str(r['budget'])} "
                           f"{int(r['llm_visual_tokens'])}" for _, r in by.iterrows())
        pooled = "context_tokens" in summary and summary["context_tokens"].notna().all()
        lines.append(("arrangement " + arrangement + ": " if pooled else "")
                     + f"visual tokens the LLM reads a prompt: {tokens}")
    return lines + methods_headline(summary, {"J&F": "J&F"}, units="videos", n_of="expressions",
                                    digits=4, n_col="expressions", delta=True, comparisons=comparisons)
