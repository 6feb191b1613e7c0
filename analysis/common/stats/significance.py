"""The one criterion of significance of an accuracy run (``eval-grounding``, ``eval-video``), used by every
artefact that marks a difference: ``comparisons.csv`` and ``claims.csv`` (``p_adjusted``), the leaderboard
columns of ``summary.csv``, the tables' marks, the paired and claims figures, and the screen.

A difference is significant where its paired swap test's p-value, adjusted by Holm's step-down method within
its FAMILY, is below :data:`ALPHA`. The family is fixed by the protocol, not by what else ran (this project's
choice): one comparison, a method at one budget against one reference (``none``, LiteLVLM at the same budget,
or a leaderboard reference), over the metrics the study tests (RefCOCO: cIoU and gIoU, and a family's own
metrics where it scores them; video: J, F and J&F). So the same comparison on the same units has the same
adjusted p in a run of 2 methods and in one of 22, and its family size is the number of metrics it was
tested on. The intervals beside a comparison (the difference's and the ratio's) invert the UNADJUSTED test
and say so: one may exclude 0 (or 100% of ``none``) where the adjusted test marks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

import pandas as pd

from analysis.common.stats.bootstrap import holm
from litelvlm.methods import is_baseline

#: the level of every mark
ALPHA = 0.05
#: the correction within a family (``comparisons.csv``'s ``correction`` column)
CORRECTION = "holm"
#: what a family is, in the words the outputs print
FAMILY = "one comparison's metrics, whatever else the run holds"
#: the marks: differs from the unpruned model, differs from LiteLVLM at the same budget
MARK_NONE, MARK_LITELVLM = "†", "‡"


def family_key(row: Mapping) -> tuple:
    """The family of a row of ``comparisons.csv``: (method, budget, reference, reference's budget)."""
    return row["method"], int(row["budget"]), row["reference"], int(row["reference_budget"])


def adjust(rows: list[MutableMapping]) -> None:
    """Set ``p_adjusted``, ``correction`` and ``family_size`` of every row of ``comparisons.csv``, in
    place, each row within its family (:func:`family_key`)."""
    families: dict[tuple, list[MutableMapping]] = {}
    for row in rows:
        families.setdefault(family_key(row), []).append(row)
    for family in families.values():
        size = int(sum(math.isfinite(r["p"]) for r in family))
        for row, adjusted in zip(family, holm([r["p"] for r in family])):
            row.update(p_adjusted=float(adjusted), correction=CORRECTION, family_size=size)


def significant(p_adjusted) -> bool:
    """Whether an adjusted p marks a difference (NaN, a missing value: no)."""
    try:
        return math.isfinite(float(p_adjusted)) and float(p_adjusted) < ALPHA
    except (TypeError, ValueError):
        return False


def comparison_row(comparisons: pd.DataFrame | None, metric: str, method: str, budget: int,
                   reference: str) -> dict:
    """The row of ``comparisons.csv`` of ``method`` at ``budget`` against ``reference`` (the unpruned model
    under any of its names) in ``metric``; empty where not tested."""
    if comparisons is None or comparisons.empty or method == reference or is_baseline(method):
        return {}
    ref = comparisons["reference"].map(is_baseline) if is_baseline(reference) else \
        comparisons["reference"] == reference
    hit = comparisons[(comparisons["metric"] == metric) & (comparisons["method"] == method)
                      & (comparisons["budget"] == budget) & ref]
    return hit.iloc[0].to_dict() if len(hit) else {}


def family_size(comparisons: pd.DataFrame | None) -> int | None:
    """The size of a run's families of adjusted p (``comparisons.csv``'s largest ``family_size``; None: no
    comparisons, or a run written before the column)."""
    if comparisons is None or "family_size" not in comparisons or comparisons["family_size"].isna().all():
        return None
    return int(comparisons["family_size"].max())


def marks(p_vs_none, p_vs_litelvlm) -> str:
    """``†`` where the criterion marks a difference from ``none``, ``‡`` from LiteLVLM at the same budget."""
    return "".join(mark for mark, p in ((MARK_NONE, p_vs_none), (MARK_LITELVLM, p_vs_litelvlm))
                   if significant(p))


def p_text(p_adjusted, family_size) -> str:
    """``Holm p 0.031, family of 2``; "" where the comparison has no p."""
    try:
        p, k = float(p_adjusted), float(family_size)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(p):
        return ""
    return f"Holm p {p:.2g}" + (f", family of {int(k)}" if math.isfinite(k) else "")


def criterion_text(family_size: int | None = None, unit: str = "") -> str:
    """The criterion in one line, as captions and the screen say it."""
    over = f" over {unit}s" if unit else ""
    size = f"family of {family_size}: " if family_size else "family: "
    return f"paired swap test{over}, Holm-adjusted p < {ALPHA}; {size}{FAMILY}"
