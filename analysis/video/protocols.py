"""``litelvlm eval-video``'s datasets other than Ref-DAVIS-17, each evaluated as its official code evaluates
it (MeViS, Refer-YouTube-VOS).

Details: docs/video.md (``analysis.video.protocols``).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from pycocotools import mask as mask_utils

from analysis.video.batches import expression_results
from analysis.video.options import DATASET_NAMES, DEFAULT_SPLITS
from litelvlm.budget import Budget
from litelvlm.runs.io import atomic_path
from litelvlm.video.datasets import REF_DAVIS, SPLITS

#: the display names (:data:`analysis.video.options.DATASET_NAMES`)
NAMES: dict[str, str] = DATASET_NAMES
MASK_COLUMNS = ["video", "exp_id", "method", "budget", "frames", "rles"]
#: the object table's columns (``objects.parquet``; under a split with masks, MeViS's unit, one row per
#: expression)
OBJECT_COLUMNS = ["video", "anno_set", "object", "method", "budget", "J", "F"]
#: a zip entry's fixed time, so the same predictions give the same bytes
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def scored_locally(dataset: str, split: str) -> bool:
    """Whether ``split`` of ``dataset`` has public masks (scored here) or is scored by its evaluation
    server."""
    return SPLITS[dataset][split]


def writes_predictions(dataset: str) -> bool:
    """Whether a run on ``dataset`` writes the server's prediction zips (every dataset but Ref-DAVIS-17)."""
    return dataset != REF_DAVIS


def encode(masks: np.ndarray) -> str:
    """(T, H, W) bool masks as one JSON list of COCO RLEs (``counts`` as text)."""
    out = []
    for m in masks:
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})
    return json.dumps(out)


def decode(rles: str) -> np.ndarray:
    """The (T, H, W) bool masks of :func:`encode`'s text."""
    return np.stack(
        [mask_utils.decode({"size": r["size"], "counts": r["counts"].encode("ascii")}).astype(bool)
                     for r in json.loads(rles)])


def expression_part(run, records: list, method: str, budget: Budget, row, batch_size: int = 1,
                    check=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(expression rows, object rows, mask rows) of one video for (method, per-frame budget), the expressions
    in order (up to ``batch_size`` per LLM forward, :mod:`.batches`); ``row(rec, anno, masks, method, budget,
    tokens)`` scores an expression of a split with masks (MeViS's protocol), and a split without them gets no
    J or F (its server scores it)."""
    rows, objects, masks_out = [], [], []
    for rec, (m, tokens, extra) in zip(records,
                                       expression_results(run, records, method, budget, batch_size, check),
                                       strict=True):
        pred = m.numpy() > 0.5
        if rec.has_masks:
            r = {**row(rec, 0, m, method, budget.column, tokens, None), **extra}
            objects.append({"video": rec.video, "anno_set": 0, "object": f"{rec.video}_{rec.exp_id}",
                            "method": method, "budget": budget.column, "J": r["J"], "F": r["F"]})
        else:
            r = {"video": rec.video, "anno_set": 0, "exp_id": rec.exp_id, "obj_id": "",
                 "sentence": rec.sentence,
                 "method": method, "budget": budget.column, "context_tokens": tokens, "J": np.nan,
                 "F": np.nan, "J&F": np.nan, "llm_visual_tokens": None, **extra}
        rows.append(r)
        masks_out.append({"video": rec.video, "exp_id": rec.exp_id, "method": method, "budget": budget.column,
                          "frames": json.dumps(list(rec.frames)), "rles": encode(pred)})
    return pd.DataFrame(rows), pd.DataFrame(objects, columns=OBJECT_COLUMNS), pd.DataFrame(
        masks_out, columns=MASK_COLUMNS)


def png_bytes(mask: np.ndarray) -> bytes:
    """One frame's prediction as VideoGLaMM writes it: ``(mask * 255).astype(uint8)``, a greyscale PNG."""
    buf = io.BytesIO()
    Image.fromarray((mask.astype(bool) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def zip_name(method: str, budget: int) -> str:
    """The prediction zip of one (method, budget) column, relative to the run folder."""
    return f"predictions/{method}@{budget}.zip"


def write_predictions(out: Path, masks: pd.DataFrame, pairs: list[tuple[str, int]],
                      groups: dict) -> list[str]:
    """One zip per (method, budget) of ``pairs`` (``Annotations/<video>/<exp_id>/<frame>.png``, videos and
    expressions in the run's order); returns their names relative to ``out``."""
    order = {(rec.video, rec.exp_id): i for i, rec in enumerate(r for recs in groups.values() for r in recs)}
    names = []
    for method, budget in pairs:
        rows = masks[(masks.method == method) & (masks.budget == budget)]
        rows = sorted(rows.itertuples(index=False), key=lambda r: order[(r.video, r.exp_id)])
        name = zip_name(method, budget)
        with atomic_path(out / name) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for r in rows:
                for frame, m in zip(json.loads(r.frames), decode(r.rles), strict=True):
                    z.writestr(zipfile.ZipInfo(f"Annotations/{r.video}/{r.exp_id}/{frame}.png", ZIP_TIME),
                               png_bytes(m))
        names.append(name)
    return names


def server_table(expr: pd.DataFrame, pairs: list[tuple[str, int]], zips: list[str]) -> pd.DataFrame:
    """``submission.csv`` of a split scored by its server: per (method, budget) the zip to upload and what
    ran."""
    out = []
    for (method, budget), name in zip(pairs, zips, strict=True):
        e = expr[(expr.method == method) & (expr.budget == budget)]
        tokens, llm = e.context_tokens.iloc[0], e.llm_visual_tokens.iloc[0]
        out.append(
            {"method": method, "budget": budget, "context_tokens": None if pd.isna(tokens) else int(tokens),
                    "videos": e.video.nunique(), "expressions": len(e),
                    "llm_visual_tokens": None if pd.isna(llm) else int(llm), "predictions": name})
    return pd.DataFrame(out).astype({"context_tokens": "Int64", "llm_visual_tokens": "Int64"})


def server_note(dataset: str, split: str) -> str:
    """What a run on a split without public masks says on screen: its J&F is the server's, never a local
    number."""
    return (f"{NAMES[dataset]} {split} has no public masks: its J&F comes from the official evaluation "
            f"server alone (upload a predictions/<method>@<budget>.zip); no J, F or J&F is computed here.")


__all__ = ["DEFAULT_SPLITS", "NAMES", "decode", "encode", "expression_part", "scored_locally",
           "server_note", "server_table", "write_predictions", "writes_predictions"]
