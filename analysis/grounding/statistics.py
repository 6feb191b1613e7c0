"""``eval-grounding``'s intervals, paired comparisons and claims
(:mod:`analysis.common.stats.accuracy_stats`).

IMAGES are resampled under both protocols, each with all its rows: under ``official`` an image's sampled
sentences share one prompt (and LiteLVLM's selection); under ``per-expression`` every sentence has its own
prompt, but the expressions of one image share the image, so they are not independent (this project's choice:
until this version ``per-expression`` resampled expressions, which treated them as independent). The tables
say the unit (``unit`` in ``summary.csv`` and ``comparisons.csv``). Each metric is re-computed in every
resample from the resampled units' rows: cIoU = sum(I) / (sum(U) + 1e-10) as a ratio of sums (never a mean of
per-expression IoUs), gIoU the mean IoU; a family's own metric likewise (UniPixel: ``eval_refcoco.py``'s cIoU
without epsilon, gIoU, box accuracy, a hit rate whose interval is Clopper-Pearson's:
:mod:`analysis.common.stats.proportion`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common.runs.study import read_json
from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import leaderboard as lb
from analysis.common.stats.bootstrap import UnitStat, unit_stat
from litelvlm.registry.provenance import mark_weights, run_weights_kind
from litelvlm.runs.io import write_csv

log = logging.getLogger(__name__)

#: The official metric's epsilon on cIoU's union (``infer_and_evaluate.py`` L433; ``compute.CIOU_EPS``).
CIOU_EPS = 1e-10
#: the metrics every family is scored on: metric -> (numerator column, denominator column or None for the row
#: count, epsilon)
BASE_METRICS: dict[str, tuple[str, str | None, float]] = {
    "ciou": ("intersection", "union", CIOU_EPS),
    "giou": ("iou", None, 0.0),
}
#: a family's own metric (its abilities' ``own_metric``; its columns are prefixed with it): its summary metric
#: -> (numerator, denominator or None) column suffixes, no epsilon (cIoU, gIoU and box accuracy)
OWN_METRICS: dict[str, tuple[str, str | None]] = {"ciou": ("inter", "union"), "giou": ("iou", None),
                                                  "box_acc": ("hit", None)}


def own_prefixes(columns) -> list[str]:
    """The own-metric prefixes a table's ``columns`` hold (a rows table's ``<prefix>_inter``, a summary's
    ``<prefix>_ciou``), in column order."""
    ends = ("_" + OWN_METRICS["ciou"][0], "_ciou")
    return list(
        dict.fromkeys(c.rsplit("_", 1)[0] for c in columns if c.endswith(ends) and c.rsplit("_", 1)[0]))


def metrics_of(columns) -> dict[str, tuple[str, str | None, float]]:
    """Every metric a table with ``columns`` may hold: :data:`BASE_METRICS`, then each own metric's
    (:data:`OWN_METRICS`, ``<prefix>_<metric>``)."""
    out = dict(BASE_METRICS)
    for p in own_prefixes(columns):
        out.update({f"{p}_{m}": (f"{p}_{num}", None if den is None else f"{p}_{den}", 0.0)
                    for m, (num, den) in OWN_METRICS.items()})
    return out


#: the metrics the claims are judged on (the paper's RefCOCO tables: cIoU; gIoU beside it)
CLAIM_METRICS = ["ciou", "giou"]
#: the protocols (the subfolders of a run of both)
UNITS = {"official": "image", "per-expression": "image"}


def resample_unit(rows: pd.DataFrame) -> str:
    """``image`` under every protocol: an image's expressions are resampled together (see the module)."""
    return "image"


def unit_ids(rows: pd.DataFrame, unit: str) -> np.ndarray:
    """Each row's unit: its image id, or the number of its (image, ref, sentence) among all the rows'."""
    if unit == "image":
        return rows["image_id"].to_numpy()
    return rows.groupby(["image_id", "ref_id", "sent_id"], sort=True).ngroup().to_numpy()


def metric_stats(rows: pd.DataFrame, unit: str) -> acc.Stats:
    """Per (method, budget) and metric (those whose columns the rows have), the statistic over ``unit``."""
    units = unit_ids(rows, unit)
    present = {m: spec for m, spec in metrics_of(rows.columns).items()
               if spec[0] in rows and (spec[1] is None or spec[1] in rows)}
    out: acc.Stats = {}
    for (method, budget), idx in rows.groupby(["method", "budget"], sort=True).indices.items():
        g = rows.iloc[idx]
        stats: dict[str, UnitStat] = {}
        for metric, (num, den, eps) in present.items():
            if g[num].isna().any():   # parts written before the family scored its own metric
                continue
            stats[metric] = unit_stat(g[num].astype(float).to_numpy(), units[idx],
                                      None if den is None else g[den].astype(float).to_numpy(), eps)
        out[(method, int(budget))] = stats
    return out


def boot_seed(config: dict) -> int:
    """The seed of the statistics: ``--boot-seed``, or ``--seed`` where it is not given."""
    given = config.get("boot_seed")
    return int(config.get("seed", 0) if given is None else given)


#: what identifies one expression's row across the methods of a run (the loyalty's pairing with ``none``)
EXPRESSION_KEYS = ["image_id", "ref_id", "sent_id", "turn"]


def with_loyalty(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each row's ``loyalty``, the IoU of its mask with the unpruned model's for the same
    expression (:func:`analysis.common.stats.leaderboard.loyalty_values`; only where the run holds
    ``none`` and every row its mask), the masks themselves (``pred_rle``, kept in the parts) left out."""
    values = lb.loyalty_values(rows, EXPRESSION_KEYS)
    masks = rows.get(lb.PRED_RLE)   # some parts with masks, others without: not merely a run without none
    if values is None and masks is not None and masks.notna().any() and masks.isna().any():
        log.warning("eval-grounding: some rows lack their masks (parts of an earlier version): no loyalty "
                    "column; re-run in a fresh --out to have it")
    rows = rows.drop(columns=[lb.PRED_RLE], errors="ignore")
    return rows if values is None else rows.assign(**{lb.LOYALTY: values})


def add_statistics(out: Path, summary: pd.DataFrame, rows: pd.DataFrame, config: dict,
                   reads: dict | None = None) -> pd.DataFrame:
    """``summary`` with its intervals and the leaderboard's columns (:mod:`analysis.common.stats.leaderboard`;
    ``reads``: {method: reads LLM attention weights}); writes ``comparisons.csv`` and ``claims.csv`` beside it
    (``--n-boot`` replicates drawn with ``--boot-seed``, by default ``--seed``, from ``config``)."""
    n_boot, seed = int(config.get("n_boot", 1000)), boot_seed(config)
    models = (config.get("model"), config.get("clip"))
    unit = resample_unit(rows)
    stats = metric_stats(rows, unit) if len(rows) else {}
    metrics = [m for m in metrics_of(summary.columns) if m in summary.columns]
    comparisons = acc.comparisons_table(stats, metrics, n_boot, seed, unit, extra_references=lb.REFERENCES)
    claims = acc.claims_table(stats, [m for m in CLAIM_METRICS if m in metrics], n_boot, seed,
                              run_weights_kind(models), comparisons)
    write_csv(out / "comparisons.csv", mark_weights(comparisons, *models))
    write_csv(out / "claims.csv", mark_weights(claims, *models))
    summary = acc.with_intervals(summary, stats, metrics, n_boot, seed, unit)
    loyalty = (lb.loyalty_stats(rows, rows[lb.LOYALTY].to_numpy(float), unit_ids(rows, unit))
               if lb.LOYALTY in rows else None)
    return lb.add_columns(summary, comparisons, [m for m in CLAIM_METRICS if m in metrics], n_boot, seed,
                          loyalty=loyalty, rows=rows, reads=reads)


def load_statistics(results_dir: str | Path) -> dict:
    """``comparisons`` and ``claims`` of an ``eval-grounding`` folder or of its protocol subfolders, each with
    a ``protocol`` column (empty tables for folders written before them)."""
    root = Path(results_dir)
    found = {"comparisons": [], "claims": []}
    for d in [root / p for p in UNITS if (root / p).is_dir()] or [root]:
        cfg = read_json(d / "config.json") if (d / "config.json").exists() else {}
        protocol = cfg.get("protocol", d.name if d.name in UNITS else "per-expression")
        for name in found:
            if (d / f"{name}.csv").exists():
                found[name].append(pd.read_csv(d / f"{name}.csv").assign(protocol=protocol))
    return {name: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=(acc.COMPARISON_COLUMNS if name == "comparisons" else acc.CLAIM_COLUMNS) + ["protocol"])
        for name, frames in found.items()}
