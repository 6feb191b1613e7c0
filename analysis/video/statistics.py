"""``eval-video``'s intervals, paired comparisons and claims (:mod:`analysis.common.stats.accuracy_stats`).

VIDEOS are resampled: every replicate draws as many videos as the run has, with replacement, and recomputes
each figure from the drawn videos' rows as ``summary.csv`` computes it: DAVIS's J (F) is, per annotator set,
the mean over the objects of the drawn videos, then the mean over the sets (one stratum per set); J&F the same
of the objects' (J + F) / 2; a family's own score (columns ``<prefix>_J``, ``_F``, ``_J&F`` its video path
adds to the summary, e.g. UniPixel's) means over the drawn videos' expressions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common.presentation.screen import board_text, with_intervals
from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import leaderboard as lb
from analysis.common.stats.bootstrap import unit_stat
from litelvlm.registry.provenance import mark_weights, run_weights_kind
from litelvlm.runs.io import write_csv, write_parquet

#: the resampling unit
UNIT = "video"
#: DAVIS's metrics (objects table, one stratum per annotator set); a family's own are ``<prefix>_<metric>``
#: (expressions table)
DAVIS_METRICS = ["J", "F", "J&F"]
#: the metric the claims are judged on (the paper's video tables: J&F)
CLAIM_METRICS = ["J&F"]


def _values(table: pd.DataFrame, metric: str) -> np.ndarray:
    j, f = table["J"].to_numpy(float), table["F"].to_numpy(float)
    return {"J": j, "F": f, "J&F": (j + f) / 2}[metric.rsplit("_", 1)[-1]]


def own_metrics(summary: pd.DataFrame) -> list[str]:
    """The family's own score columns of ``summary`` (``<prefix>_J``, ``_F``, ``_J&F``), in its order."""
    return [c for c in summary.columns if c.rsplit("_", 1)[-1] in DAVIS_METRICS and c not in DAVIS_METRICS]


def metric_stats(expr: pd.DataFrame, objects: pd.DataFrame, own: list[str]) -> acc.Stats:
    """Per (method, budget) and metric, the statistic over videos (and the family's ``own`` metrics)."""
    out: acc.Stats = {}
    for (method, budget), o in objects.groupby(["method", "budget"], sort=True):
        stats = {m: unit_stat(_values(o, m), o["video"].to_numpy(), strata=o["anno_set"].to_numpy())
                 for m in DAVIS_METRICS}
        if own:
            e = expr[(expr["method"] == method) & (expr["budget"] == budget)]
            stats.update({m: unit_stat(_values(e, m), e["video"].to_numpy()) for m in own})
        out[(method, int(budget))] = stats
    return out


def add_statistics(out: Path, summary: pd.DataFrame, expr: pd.DataFrame, objects: pd.DataFrame, n_boot: int,
                   seed: int, models: tuple, reads: dict | None = None) -> pd.DataFrame:
    """``summary`` with its intervals and the leaderboard's columns (:mod:`analysis.common.stats.leaderboard`:
    the loyalty of ``expr``'s ``loyalty`` column, the share of J&F, the comparisons with ``random`` and
    ``downsample``, ``reads``: {method: reads LLM attention weights}); writes ``comparisons.csv`` and
    ``claims.csv`` beside it."""
    own = own_metrics(summary)
    stats = metric_stats(expr, objects, own)
    metrics = DAVIS_METRICS + own
    comparisons = acc.comparisons_table(stats, metrics, n_boot, seed, UNIT, extra_references=lb.REFERENCES)
    claims = acc.claims_table(stats, CLAIM_METRICS, n_boot, seed, run_weights_kind(models), comparisons)
    write_csv(out / "comparisons.csv", mark_weights(comparisons, *models))
    write_csv(out / "claims.csv", mark_weights(claims, *models))
    summary = acc.with_intervals(summary, stats, metrics, n_boot, seed, UNIT)
    loyalty = (lb.loyalty_stats(expr, expr[lb.LOYALTY].to_numpy(float), expr["video"].to_numpy())
               if lb.LOYALTY in expr else None)
    return lb.add_columns(summary, comparisons, CLAIM_METRICS, n_boot, seed, loyalty=loyalty, reads=reads)


def with_loyalty(expr: pd.DataFrame, masks: list[pd.DataFrame], pairs: list[tuple[str, int]]) -> pd.DataFrame:
    """``expr`` with each expression's ``loyalty``: the mean over its frames of its masks' IoU with the
    unpruned model's (``masks``: the parts' mask tables, COCO RLEs); unchanged where some expression has no
    masks (parts of an earlier version) or the run holds no ``none``."""
    if expr.empty or not masks:
        return expr
    table = pd.concat(masks, ignore_index=True)
    keep = {(m, int(b)) for m, b in pairs}
    table = table[[(m, int(b)) in keep for m, b in zip(table.method, table.budget, strict=True)]]
    keys = ["video", "exp_id", "method", "budget"]
    table = table.astype({"budget": "int64"}).drop_duplicates(keys)[keys + ["rles"]]
    rows = expr[keys].astype({"budget": "int64"}).merge(table, on=keys, how="left")
    values = lb.loyalty_values(rows, ["video", "exp_id"], "rles")
    return expr if values is None else expr.assign(**{lb.LOYALTY: values})


def method_reads(pipe, methods: list[str]) -> dict | None:
    """{method: whether it reads LLM attention weights} on ``pipe``'s LLM, as its family runs it (None where
    the LLM does not say its layers)."""
    layers = getattr(pipe.language_model.config, "num_hidden_layers", None)
    return None if layers is None else lb.reads_attention(
        dict.fromkeys(methods), int(layers), pipe.abilities.backbone)


def load_statistics(results_dir: str | Path) -> dict:
    """``comparisons`` and ``claims`` of an ``eval-video`` folder (empty tables for a folder written before
    them)."""
    d = Path(results_dir)
    return {name: pd.read_csv(d / f"{name}.csv") if (d / f"{name}.csv").exists()
            else pd.DataFrame(columns=cols)
            for name, cols in (("comparisons", acc.COMPARISON_COLUMNS), ("claims", acc.CLAIM_COLUMNS))}


#: the per-unit table's columns (``videos.csv``)
VIDEO_COLUMNS = ["video", "method", "budget", "J", "F", "J&F", "objects"]


def unit_table(objects: pd.DataFrame) -> pd.DataFrame:
    """Per video, method and budget (in the objects' order): the mean J, F and J&F over its objects and
    annotator sets, and how many object rows that is."""
    o = objects.assign(**{"J&F": _values(objects, "J&F")})
    g = o.groupby(["video", "method", "budget"], sort=False)
    table = g[["J", "F", "J&F"]].mean().join(g.size().rename("objects")).reset_index()
    return table[VIDEO_COLUMNS]


def write_unit_tables(out: Path, objects: pd.DataFrame, models: tuple) -> None:
    """``objects.parquet`` (the rows the statistics resample) and ``videos.csv`` (:func:`unit_table`)."""
    write_parquet(out / "objects.parquet", mark_weights(objects.reset_index(drop=True), *models))
    write_csv(out / "videos.csv", mark_weights(unit_table(objects), *models))


def summary_text(summary: pd.DataFrame) -> str:
    """The summary as printed and written to ``summary.txt``: each figure with its interval and Monte Carlo
    error in one cell (:func:`analysis.common.presentation.screen.with_intervals`)."""
    main, board = lb.split_view(summary)   # the leaderboard's columns: a second table
    with pd.option_context("display.width", 160, "display.max_rows", 80):
        return (with_intervals(main).to_string(index=False, float_format=lambda x: f"{x:.4f}")
                + board_text(board, float_format=lambda x: f"{x:.4f}"))
