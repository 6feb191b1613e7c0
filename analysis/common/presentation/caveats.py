"""What a reader must know beside a result, said wherever the result is shown, one line each:

* null results (:func:`null_results`): a metric that is 0 in every row, pruned rows that equal ``none``
  exactly (the masks do not depend on the tokens kept), a method whose pruning changes no LLM token; each with
  its likely cause;
* a run's timing caveat (:func:`timing_caveat`): the busy-machine warning a timed run printed, recorded in its
  ``config.json`` under :data:`TIMING_KEY`.

The commands print them under their tables (and into ``summary.txt``); ``litelvlm figures`` draws them under
every figure drawn from the run (:func:`draw_notes`, called by
``analysis.common.presentation.figure_set.save_figures``).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pandas as pd

from analysis.common.presentation.style import laid_out_renderer
from analysis.common.runs.study import read_json
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import is_baseline
from litelvlm.registry.provenance import weights_kind

#: the ``config.json`` key of a run's busy-machine warning (a timed run on a loaded CPU; volatile, as its run
#: times)
TIMING_KEY = "busy"
#: the gid of a note drawn on a figure (:func:`draw_notes`)
NOTE_GID = "run-note"
#: the largest difference from ``none`` that the 4 digits a summary shows cannot tell
SHOWN = 5e-5
#: the colour of a drawn note
NOTE_COLOR = "#8c510a"


def _random(models) -> bool:
    return any(m is not None and weights_kind(m) == "random" for m in models)


def _show(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{int(f):,}" if f.is_integer() else f"{f:g}"


def _rows(d: pd.DataFrame) -> str:
    return ", ".join(f"{m}@{_show(b)}" for m, b in zip(d["method"], d["budget"]))


def null_results(summary: pd.DataFrame, metrics, models=(), tokens: str = "llm_visual_tokens") -> list[str]:
    """One line per null result of a per-(method, budget) ``summary`` on ``metrics`` (those present), each
    with its likely cause (``models``: the run's model strings; random weights name themselves as the cause);
    empty: none."""
    metrics = [m for m in metrics if m in summary]
    if summary.empty or not metrics or "method" not in summary:
        return []
    rnd = _random(models)
    vals = summary[metrics].apply(pd.to_numeric, errors="coerce")
    if vals.notna().any().any() and (vals.fillna(0) == 0).all().all():
        cause = ("these random weights give empty masks (their mask gate is closed for this seed: another "
                 "seed may open it)" if rnd else "every predicted mask is empty or misses its object")
        return [f"null result: every {', '.join(metrics)} is 0 in every row; likely cause: {cause}"]
    lines = []
    is_base = summary["method"].map(is_baseline)
    base, pruned = summary[is_base], summary[~is_base]
    cause = ("these random weights give masks that do not depend on the tokens kept" if rnd
             else "the masks do not depend on the tokens kept at these budgets")
    if not pruned.empty and not base.empty:
        same = (vals[~is_base] == vals[is_base].iloc[0]).all(axis=1)
        close = ((vals[~is_base] - vals[is_base].iloc[0]).abs() <= SHOWN).all(axis=1)
        if same.all():
            lines.append(f"null result: every pruned row equals `none` exactly ({', '.join(metrics)}); "
                         f"likely cause: {cause}")
        elif close.all():
            exact = f" (exactly: {_rows(pruned[same.to_numpy()])})" if same.any() else ""
            lines.append("null result: every pruned row equals `none` to the 4 digits shown "
                         f"({', '.join(metrics)}){exact}; likely cause: {cause}")
        elif same.any():
            lines.append(f"null result: {_rows(pruned[same.to_numpy()])} equal `none` exactly "
                         f"({', '.join(metrics)}); likely cause: {cause}")
    elif len(pruned) > 1 and (vals[~is_base].nunique(dropna=False) == 1).all():
        lines.append(f"null result: every row has the same {', '.join(metrics)}; likely cause: {cause}")
    if tokens in summary and not base.empty and not pruned.empty:
        n = base[tokens].iloc[0]
        for method, d in pruned.groupby("method", sort=False):
            if pd.notna(n) and (d[tokens] == n).all():
                lines.append(f"null result: {method}'s pruning changes no LLM token ({tokens} is {_show(n)} "
                             "in every row, as `none`'s); likely cause: in this run's arrangement the LLM "
                             "does not read the tokens the method prunes")
    return lines


def timing_caveat(config: dict | None) -> str | None:
    """The busy-machine warning a run's ``config.json`` recorded (:data:`TIMING_KEY`), as one line; None
    without."""
    warning = (config or {}).get(TIMING_KEY)
    return f"TIMES UNRELIABLE: {warning}" if warning else None


def run_caveats(folder: str | os.PathLike) -> list[str]:
    """The timing caveats (:func:`timing_caveat`) recorded by the ``config.json`` files of a results folder
    and its subfolders, each once."""
    found: list[str] = []
    for path in sorted(Path(folder).rglob("config.json")):
        try:
            cfg = read_json(path)
        except LiteLVLMError:
            continue
        line = timing_caveat(cfg) if isinstance(cfg, dict) else None
        if line and line not in found:
            found.append(line)
    return found


def draw_notes(fig, lines) -> list[str]:
    """Write ``lines`` under everything drawn on ``fig`` (after its weights footnote), wrapped to its width;
    returns the lines drawn."""
    lines = [line for line in dict.fromkeys(lines) if line]
    if not lines:
        return []
    width = max(40, int(fig.get_figwidth() * 17))
    text = "\n".join(w for line in lines for w in textwrap.wrap(line, width))
    box = fig.get_tightbbox(laid_out_renderer(fig))
    x = max(box.x0 / fig.get_figwidth(), 0.0) if box is not None else 0.01
    y = min(box.y0 / fig.get_figheight(), 0.0) - 0.01 if box is not None else 0.0
    fig.text(x, y, text, ha="left", va="top", fontsize=6, color=NOTE_COLOR, fontweight="bold", gid=NOTE_GID)
    return lines


__all__ = ["NOTE_GID", "TIMING_KEY", "draw_notes", "null_results", "run_caveats", "timing_caveat"]
