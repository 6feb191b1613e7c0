"""The leaderboard columns of an accuracy table (``eval-grounding``, ``eval-video``; this project's addition):
what benchmark suites report beside accuracy, per (method, budget) of ``summary.csv``, each written only where
its inputs exist (a run without them, or an earlier run's folder, keeps its tables as they were).

Details: docs/statistics.md (``analysis.common.stats.leaderboard``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import significance
from analysis.common.stats.bootstrap import UnitStat, unit_stat
from litelvlm.cost.stages import TOTAL, time_stages
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method, is_baseline

LOYALTY = "loyalty"
LAYER_AVG = "layer_avg_tokens"
SHARE = "share_of_unpruned"
READS_ATTENTION = "reads_attention"
PRUNE_MS = "prune_ms"
#: the per-row column of a prediction's masks in the parts (COCO RLEs, the format of eval-video's ``rles``)
PRED_RLE = "pred_rle"
#: the stages of the stage columns (``--stage-costs``): the vision towers (the paired CLIP included), the
#: method's selection, the LLM's prefill, the mask decoder, and the whole call
BOARD_STAGES = ("vision", "selection", "prefill", "mask", TOTAL)
#: the stage columns, in order: ms by stage, then FLOPs, then weight bytes (the names of
#: :mod:`analysis.common.presentation.stage_plots`)
STAGE_COLUMNS = [f"stage_{s}_{what}" for what in ("ms", "flops", "weight_bytes")
                 for s in BOARD_STAGES]
#: the methods each method is compared with at its budget, when the run holds them
REFERENCES = ("random", "downsample")
#: the prefixes of the columns this module adds to a summary
PREFIXES = (LOYALTY, LAYER_AVG, SHARE, "diff_vs_", "p_adjusted_", READS_ATTENTION, PRUNE_MS, "stage_")


# -- masks -------------------------------------------------------------------------------------------------
def encode_masks(masks: np.ndarray) -> str:
    """(T, H, W) boolean masks (T = 1 for an image) as one JSON list of COCO RLEs (``counts`` as text)."""
    out = []
    for m in np.asarray(masks):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return json.dumps(out)


def _rles(text: str) -> list[dict]:
    return [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in json.loads(text)]


def masks_iou(a: str, b: str) -> float:
    """The mask IoU of two :func:`encode_masks` texts of the same frames: the mean over the frames of each
    frame's intersection over union (1 where both masks are empty)."""
    if a == b:
        return 1.0
    ra, rb = _rles(a), _rles(b)
    if len(ra) != len(rb):
        raise ValueError(f"{len(ra)} and {len(rb)} frames: the predictions are of different inputs")
    ious = []
    for x, y in zip(ra, rb, strict=True):
        if not mask_utils.area([x, y]).any():
            ious.append(1.0)
        else:
            ious.append(float(mask_utils.iou([x], [y], [0])[0][0]))
    return float(np.mean(ious))


def loyalty_values(rows: pd.DataFrame, keys: Sequence[str], column: str = PRED_RLE) -> np.ndarray | None:
    """Per row, the IoU of its masks (``column``) with those of the unpruned model's row of the same ``keys``
    (NaN where there is none); None where it cannot be computed: no ``none`` rows, or a row without masks
    (parts written before they were stored)."""
    if rows.empty or column not in rows or rows[column].isna().any():
        return None
    base = rows["method"].map(is_baseline).to_numpy(bool)
    if not base.any():
        return None
    ref = dict(zip(rows.loc[base, list(keys)].itertuples(index=False, name=None), rows.loc[base, column]))
    return np.array([masks_iou(m, ref[k]) if k in ref else math.nan for k, m in
                     zip(rows[list(keys)].itertuples(index=False, name=None), rows[column], strict=True)])


def loyalty_stats(rows: pd.DataFrame, values: np.ndarray,
                  units: np.ndarray) -> dict[tuple[str, int], UnitStat]:
    """Per (method, budget), loyalty as a mean over the rows of the resampled ``units`` (one per row)."""
    out = {}
    for (method, budget), idx in rows.groupby(["method", "budget"], sort=True).indices.items():
        out[(method, int(budget))] = unit_stat(values[idx], units[idx])
    return out


# -- what a method declares --------------------------------------------------------------------------------
def layer_average(schedule: Iterable[tuple[int, int]], num_visual: int, num_layers: int) -> float:
    """The visual tokens each of ``num_layers`` decoder layers sees under ``schedule`` (``((first_layer,
    tokens), ...)``; ``num_visual`` before its first stage), summed and divided by ``num_layers``."""
    stages = sorted((int(first), int(tokens)) for first, tokens in schedule)
    total, tokens, at = 0, num_visual, 0
    for layer in range(num_layers):
        while at < len(stages) and stages[at][0] <= layer:
            tokens = stages[at][1]
            at += 1
        total += tokens
    return total / num_layers if num_layers else math.nan


def layer_avg_tokens(spec, budget, num_visual: int, num_layers: int, options: dict | None = None) -> float:
    """:func:`layer_average` of ``spec``'s token schedule (``Method.token_schedule``) at ``budget`` on an
    input of ``num_visual`` visual tokens and an LLM of ``num_layers`` layers (NaN where the method declares
    no schedule for that LLM)."""
    try:
        return layer_average(spec.token_schedule(budget, num_visual, num_layers, options), num_visual,
                             num_layers)
    except LiteLVLMError:
        return math.nan


def reads_attention(methods: Iterable[str], num_layers: int,
                    backbone: str | None = None) -> dict[str, object]:
    """{method: whether it reads any LLM decoder layer's attention weights on an LLM of ``num_layers``
    layers (``Method.attention_layers``, as it runs on ``backbone``); None where it declares none for that
    LLM}."""
    out: dict[str, object] = {}
    for m in methods:
        try:
            out[m] = bool(get_method(m, backbone).attention_layers(num_layers))
        except LiteLVLMError:
            out[m] = None
    return out


def timed_call(pipe, spec, call: Callable[[], object]) -> tuple[object, float]:
    """(``call()``, the ms of its pruning step): the ``selection`` stage of
    :func:`litelvlm.cost.stages.time_stages` for a method selecting on CLIP's side, NaN (the call untimed)
    for any other."""
    if not spec.acts_on_clip:
        return call(), math.nan
    out, ms = time_stages(pipe, call)
    return out, float(ms["selection"])


# -- the summary's columns ---------------------------------------------------------------------------------
def board_columns(columns: Iterable[str]) -> list[str]:
    """The columns of a summary this module wrote, in order."""
    return [c for c in columns if c.startswith(PREFIXES)]


def _per_run(summary: pd.DataFrame, rows: pd.DataFrame, column: str, how: str) -> list[float] | None:
    """``column`` of the rows aggregated per summary row: ``mean`` (None where a row lacks it: parts written
    before it) or ``median`` (of the rows holding a value); None when the rows have no such column."""
    if rows is None or column not in rows or rows.empty:
        return None
    values = pd.to_numeric(rows[column], errors="coerce")
    if how == "mean" and values.isna().any():
        return None
    got = values.groupby([rows["method"], rows["budget"].astype("int64")]).agg(how)
    return [float(got.get((m, int(b)), math.nan)) for m, b in zip(summary["method"], summary["budget"])]


def _reference_columns(summary: pd.DataFrame, comparisons: pd.DataFrame, metrics: Sequence[str]) -> dict:
    """``diff_vs_<ref>_<metric>`` and ``p_adjusted_vs_<ref>_<metric>`` for each reference of
    :data:`REFERENCES` the run holds, from its comparisons with it."""
    out: dict[str, list] = {}
    held = set(summary["method"])
    for ref in (r for r in REFERENCES if r in held):
        got = comparisons[comparisons["reference"] == ref] if len(comparisons) else comparisons
        index = {(r.metric, r.method, int(r.budget)): (r.difference, r.p_adjusted) for r in got.itertuples()}
        for metric in metrics:
            pairs = [index.get((metric, m, int(b)), (math.nan, math.nan))
                     for m, b in zip(summary["method"], summary["budget"])]
            out[f"diff_vs_{ref}_{metric}"] = [float(d) for d, _ in pairs]
            out[f"p_adjusted_vs_{ref}_{metric}"] = [float(p) for _, p in pairs]
    if out and (family := significance.family_size(comparisons)) is not None:
        out["p_adjusted_family_size"] = family
    return out


def add_columns(summary: pd.DataFrame, comparisons: pd.DataFrame, metrics: Sequence[str], n_boot: int,
                seed: int, *, loyalty: dict | None = None, rows: pd.DataFrame | None = None,
                reads: dict | None = None) -> pd.DataFrame:
    """``summary`` with the leaderboard's columns at its end (see the module), each where its input is given:
    ``loyalty`` ({(method, budget): UnitStat}), the per-row ``layer_avg_tokens``, ``prune_ms`` and stage
    columns of ``rows``, the shares and the comparisons with :data:`REFERENCES` on ``metrics``, ``reads``
    ({method: reads attention weights}); the existing columns untouched."""
    out = summary.copy()
    if out.empty:
        return out
    if loyalty:
        out[LOYALTY] = [loyalty[(m, int(b))].value() if (m, int(b)) in loyalty else math.nan
                        for m, b in zip(out["method"], out["budget"])]
        out = acc.with_intervals(out, {k: {LOYALTY: s} for k, s in loyalty.items()}, [LOYALTY], n_boot, seed)
    if (avg := _per_run(out, rows, LAYER_AVG, "mean")) is not None:
        out[LAYER_AVG] = avg
    base = out[out["method"].map(is_baseline)]
    for metric in metrics if len(base) else ():
        ref = float(base[metric].iloc[0])
        out[f"{SHARE}_{metric}"] = out[metric].astype(float) / ref if ref else math.nan
    for name, values in _reference_columns(out, comparisons, metrics).items():
        out[name] = values
    if reads:
        out[READS_ATTENTION] = [reads.get(m) for m in out["method"]]
    if (ms := _per_run(out, rows, PRUNE_MS, "median")) is not None:
        out[PRUNE_MS] = ms
    for column in STAGE_COLUMNS:   # --stage-costs: each the median of the rows holding it
        if (values := _per_run(out, rows, column, "median")) is not None:
            out[column] = values
    return out


def split_view(summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(the summary without this module's columns, (method, budget, units) and those columns, or None when it
    has none): the text view shows them as a second table, the first one as before."""
    board = board_columns(summary.columns)
    if not board:
        return summary, None
    keys = [c for c in ("method", "budget", "units") if c in summary]
    return summary.drop(columns=board), summary[keys + board]


__all__ = ["BOARD_STAGES", "LAYER_AVG", "LOYALTY", "PRED_RLE", "PRUNE_MS", "READS_ATTENTION", "REFERENCES",
           "SHARE", "STAGE_COLUMNS", "add_columns", "board_columns", "encode_masks", "layer_average",
           "layer_avg_tokens", "loyalty_stats", "loyalty_values", "masks_iou", "reads_attention",
           "split_view", "timed_call"]
