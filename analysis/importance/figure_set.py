"""Figure set 5, importance correlation: CLIP token ranks against the LLM's own token importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from analysis.common.grounding.grounding_runs import plan
from analysis.common.grounding.grounding_scoring import evaluate_image, summarize
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.common.runs.study import resolve_config_path
from analysis.grounding import GroundingArgs
from analysis.importance import plots
from analysis.importance.command import run
from analysis.importance.compute import load_importance
from analysis.importance.options import GRADIENT_SIGNALS, ImportanceArgs
from litelvlm.budget import Budget
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import BASELINE
from litelvlm.registry.families import DEFAULT_MODEL, card_of, exif_transpose, load_pipeline
from litelvlm.runs.io import write_csv


def smoke_importance(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """Small results: the tiny random GLaMM on one COCO-128 image (one sentence; a synthetic REFER folder
    when ../shared/data is absent), VisPruner's and FastV's own scores beside CLIP's, and the oracle ablation
    (eval-grounding's per-image scoring) on it."""
    data = coco128_dir()
    if data is None:
        data = write_tiny_refer(out_dir / "refer")
    model = model or DEFAULT_MODEL
    pipe = load_pipeline(model)
    run(ImportanceArgs(refer_dir=str(data), out=str(out_dir), model=model, limit_images=1, max_sentences=1,
                       signals=["attention", "saliency", "ablation"], group=12,
                       method_signals=["vispruner", "fastv"], save_scores=1, n_boot=200),
        pipe=pipe, screen=screen)
    records = [r for r in load_refer(data, None, "refcoco", "unc", "val")]
    first = [r for r in records if r.image_id == min(x.image_id for x in records)][:1]
    g = GroundingArgs(refer_dir=str(data), out=str(out_dir / "ablation"), model=model)
    methods = ["litelvlm", "random", "llm-attention", "saliency"]
    pairs = plan([BASELINE, *methods], Budget.parse_list("128,32"), pipe.num_visual_tokens)
    with torch.no_grad():
        rows = evaluate_image(pipe, g, first, first[0].image(exif_transpose(pipe)), pairs)

    write_csv(out_dir / "ablation" / "summary.csv", summarize(pd.DataFrame(rows)))


def read_importance(results_dir: Path) -> dict:
    """The importance tables of a results folder (and ``ablation/summary.csv`` of eval-grounding, if
    present)."""
    tables = load_importance(results_dir)
    tables["referents"] = referent_windows(results_dir, tables)
    tables["num_tokens"] = typical_n(tables)
    return tables


def referent_windows(results_dir: Path, tables: dict) -> dict:
    """Per sentence of ``scores``, its referent's mask in the image window of its visual tokens (CLIP's
    centred square crop for a family with a fixed N; the whole image when N depends on the image), resized to
    the window image; empty when the REFER data cannot be reached."""
    scores, cfg = tables.get("scores"), tables.get("config") or {}
    if scores is None or scores.empty:
        return {}
    try:
        refer_dir = resolve_config_path(cfg, "refer_dir", results_dir)
        image_dir = resolve_config_path(cfg, "image_dir", results_dir)
        records = load_refer(refer_dir, image_dir, cfg.get("dataset", "refcoco"), cfg.get("split_by", "unc"),
                             cfg.get("split", "val"))
    except (LiteLVLMError, OSError, KeyError, TypeError, ValueError):
        return {}
    by_sent = {r.sent_id: r for r in records}
    out = {}
    for sent_id, image_id in scores[["sent_id", "image_id"]].drop_duplicates().itertuples(index=False):
        r, window = by_sent.get(int(sent_id)), tables["images"].get(int(image_id))
        if r is None or window is None:
            continue
        mask = np.asarray(r.mask(), dtype=np.uint8)
        h, w = mask.shape
        side = min(h, w) if cfg.get("num_visual_tokens") is not None else None
        if side is None:  # the tokens cover the whole image
            crop = Image.fromarray(mask * 255)
            out[int(sent_id)] = np.asarray(
                crop.resize((window.shape[1], window.shape[0]), Image.NEAREST)) > 127
            continue
        y0, x0 = (h - side) // 2, (w - side) // 2
        crop = Image.fromarray(mask[y0:y0 + side, x0:x0 + side] * 255)
        out[int(sent_id)] = np.asarray(crop.resize((window.shape[1], window.shape[0]), Image.NEAREST)) > 127
    return out


def typical_n(tables: dict) -> int:
    """The family's N, or the median of each image's N (``visual_tokens.csv``) when it depends on the
    image."""
    fixed = tables["config"].get("num_visual_tokens")
    if fixed is not None or tables.get("visual") is None:
        return int(fixed or 576)
    return int(tables["visual"]["num_visual"].median())


def draw_importance(tables: dict) -> dict:
    """Correlation against LLM layer; the mission's figure (reversed CLIP ranks and each method's score
    against attention and captum saliency) when the run holds saliency; one sentence's scatter, overlap
    against k, heat maps, oracle ablation."""
    summary, scores = tables["summary"], tables["scores"]
    figs = {}
    for metric in ("spearman", "kendall"):
        figs[f"by_layer_{metric}"], _ = plots.plot_importance_by_layer(summary, metric=metric)
    if summary["llm_signal"].isin(GRADIENT_SIGNALS).any() and plots.mission_signals(summary):
        layers = (tables.get("config") or {}).get("llm_layers")
        figs["mission_spearman"], _ = plots.plot_mission_correlation(summary, num_layers=layers)
    figs["overlap_vs_k"], _ = plots.plot_overlap_vs_k(summary, num_tokens=tables["num_tokens"])
    if not scores.empty:
        sent_id = int(scores["sent_id"].iloc[0])
        image_id = int(scores["image_id"].iloc[0])
        figs["scatter"], _ = plots.plot_importance_scatter(scores, sent_id)
        if image_id in tables["images"]:
            figs["heatmaps"], _ = plots.plot_signal_heatmaps(tables["images"][image_id], scores, sent_id,
                                                             referent=tables["referents"].get(sent_id))
    if "ablation" in tables:
        figs["oracle_ablation"], _ = plots.plot_oracle_ablation(tables["ablation"])
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="importance", notebook="05_importance_correlation", title="Importance correlation",
    description="Correlation of CLIP token ranks (-s, context, +s) with the LLM's token importance "
                "(attention rows per layer, captum attributions, group ablation) against LLM layer; one "
                "sentence's scatter; top-k overlap against k; heat maps of every signal; the oracle ablation "
                "(cIoU against budget for LiteLVLM and the llm-attention / saliency oracles).",
    command="litelvlm importance (and litelvlm eval-grounding --out OUT/ablation)",
    requires=("analysis.importance.compute", "analysis.importance.plots"), subdir="importance",
    make_smoke=smoke_importance, read=read_importance, draw=draw_importance,
    smoke_note=f"the random-weight `{DEFAULT_MODEL}` {card_of(DEFAULT_MODEL).display_name} on one COCO-128 "
               "image (two sentences; a synthetic REFER folder when ../shared/data is absent), so every "
               "number is meaningless: it only shows the "
               "layout", results_files=("importance.parquet",), studies=("importance",),
    make_results="litelvlm importance --out {out} "
                 "(and litelvlm eval-grounding --out {out}/ablation for the oracle ablation)")
