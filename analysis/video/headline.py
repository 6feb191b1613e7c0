"""``eval-video``'s screen at the end of a scored run (:func:`announce`) and its headline
(:func:`video_headline`): the visual tokens the LLM reads per budget, then J&F per method and budget with its
change from ``none``, its interval and the run's marks of significance."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from analysis.common.presentation.degenerate import warn_if_degenerate
from analysis.common.presentation.screen import methods_headline
from analysis.common.runs.command import Screen
from analysis.video.options import VideoArgs
from litelvlm.methods import is_baseline
from litelvlm.registry.provenance import weights_banner
from litelvlm.runs.staging import current

log = logging.getLogger("analysis.video.compute")


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


def announce(a: VideoArgs, out: Path, said: tuple[str, list[str], str], summary: pd.DataFrame,
             expr: pd.DataFrame, clip: str | None, note: str, screen: Screen) -> None:
    """The screen of a scored run: the table, the null results, the batch check (``said``), where the tables
    went, the degenerate-run warning, the weights banner and the note."""
    shown, nulls, shown_check = said
    screen.show_table(shown, out / "summary.txt", "J&F per method and budget")
    for line in nulls:
        print(line)
    print(shown_check, end="")
    print(f"{len(summary)} rows -> {out / 'summary.csv'}; {len(expr)} expressions -> "
          f"{out / 'expressions.parquet'}")
    warn_if_degenerate(log, "eval-video", len(expr) > 0 and not (expr["J"].any() or expr["F"].any()), a.model,
                       out, "every J and F is 0 (every mask empty, or missing its object)")
    print(f"Note: {note}.")
    tested = current(out / "comparisons.csv")
    comparisons = pd.read_csv(tested) if tested.exists() else None
    screen.headline("eval-video", video_headline(summary, a.arrangement, comparisons),
                    weights_banner(a.model, clip))
