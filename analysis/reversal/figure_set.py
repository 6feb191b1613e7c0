"""Figure set 1, similarity reversal: similarity maps with the referent, AUROC per layer per model,
breakdowns."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.common.measures.merged_grid import CLIP_GRID, merged_params
from analysis.common.presentation import style
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import SMOKE_MODEL, refer_data
from analysis.common.runs.command import Screen
from analysis.common.runs.study import read_json, resolve_config_path
from analysis.reversal import ReversalArgs, command, plots
from litelvlm.clip.traces import Geometry
from litelvlm.data.geometry import transform_params
from litelvlm.data.refer import load_coco_instances, load_refer
from litelvlm.registry.families import card, exif_transpose


def smoke_reversal(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """Two random-weight 24x24 CLIPs (two seeds) on a few COCO-128 val sentences (or a tiny hand-made REFER
    folder)."""
    data = refer_data(Path(out_dir))
    models = [model] if model else [SMOKE_MODEL, f"{SMOKE_MODEL}:1"]
    for i, m in enumerate(models):
        rc = command.run(ReversalArgs(out=str(Path(out_dir) / f"run{i}"), model=m, refer_dir=str(data),
                                      split="val", limit_sentences=16, layers=["all"], n_boot=200,
                                      save_maps=3 if i == 0 else 0), screen=screen)
        if rc:
            raise RuntimeError(f"litelvlm reversal failed on {m} (status {rc})")


def grid_run(config: dict) -> bool:
    """Whether a reversal run is one of the merged-grid study's (``--pad-to-square``, ``--grid FAMILY`` or
    ``--space llm``: figure set 10) rather than a plain one (figure set 1), by its recorded options."""
    a = config.get("args") or {}
    return bool(a.get("pad_to_square")) or a.get("grid", CLIP_GRID) != CLIP_GRID or a.get(
        "space", "clip") != "clip"


def grid_name(grid: str) -> str:
    """How a run's label says where its similarity was ranked: CLIP's grid, or a family's merged grid (its
    card's display name)."""
    return " on CLIP's grid" if grid == CLIP_GRID else f" on {card(grid).display_name}'s merged grid"


def read_reversal(results_dir: Path, runs: list[Path] | None = None) -> dict:
    """Summaries of every run under the folder (one per model), or of ``runs``, and the similarity-map
    examples of the first."""
    runs = sorted(runs) if runs is not None else sorted(
        p.parent for p in Path(results_dir).rglob("summary.csv") if (p.parent / "reversal.parquet").exists())
    # names runs by their own folders
    root = Path(os.path.commonpath(runs)) if len(runs) > 1 else Path(results_dir)
    configs = [read_json(run / "config.json") for run in runs]
    models = [c["clip"]["model"] for c in configs]
    grids = [c["args"].get("grid", "clip") for c in configs]
    spaces = [c["args"].get("space", "clip") for c in configs]
    labels = [style.model_name(m)
              + (" in the LLM's input space" if sp == "llm" else grid_name(g) if set(grids) != {CLIP_GRID}
                 else "")
              for m, g, sp in zip(models, grids, spaces)]
    summaries = []
    # a model run twice is told apart by its folder
    for run, model, label, space in zip(runs, models, labels, spaces):
        s = pd.read_csv(run / "summary.csv")
        s.insert(0, "model", f"{label} ({run.relative_to(root)})" if labels.count(label) > 1 else label)
        s.insert(1, "weights_model", model)  # the model string itself, for the figure's weights note
        if space != "clip":
            s.insert(2, "space", space)
        summaries.append(s)
    examples, seen = [], set()
    for run, space in zip(runs, spaces):  # the maps of the first run of each space that saved some
        if space in seen or not (run / "similarity_maps.parquet").exists():
            continue
        seen.add(space)
        cfg = read_json(run / "config.json")
        a = cfg["args"]
        refer_dir, image_dir, coco = (resolve_config_path(cfg, k, run) for k in ("refer_dir", "image_dir",
                                                                                  "coco_instances"))
        recs = (load_refer(refer_dir, image_dir, a["dataset"], a["split_by"], a["split"])
                if refer_dir else load_coco_instances(coco, image_dir, a["split"]))
        by_sent = {r.sent_id: r for r in recs}
        maps = pd.read_parquet(run / "similarity_maps.parquet")
        maps = maps[maps["layer"] == maps["layer"].max()]
        geom = (Geometry(**{**cfg["clip"]["geometry"], "crop": tuple(cfg["clip"]["geometry"]["crop"])})
                if space == "clip" else None)
        for _, m in maps.iterrows():
            r = by_sent[int(m["sent_id"])]
            examples.append(
                {"image": r.image(exif_transpose(cfg["clip"]["model"])), "mask": r.mask(), "k": 32,
                             "similarity": np.asarray(m["similarity"])
                             .reshape(int(m["rows"]), int(m["cols"])),
                             "params": (transform_params(geom, r.height, r.width, a["pad_to_square"])
                                        if a.get("grid", CLIP_GRID) == CLIP_GRID
                                        else merged_params(r.height, r.width, a["grid"])),
                             "title": f"{m['sentence']!r} (" + ("LLM input space" if space == "llm" else
                                                                 f"layer {int(m['layer'])}") + ")",
                             "model": cfg["clip"]["model"]})
    summary = pd.concat(summaries, ignore_index=True)
    if "space" in summary:
        summary["space"] = summary["space"].fillna("clip")
    return {"summary": summary, "examples": examples}


def run_slug(label: str) -> str:
    """A run's label (its model, and what tells it apart) as a part of a file name."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-")


def draw_reversal(tables: dict) -> dict:
    """Similarity maps with referent contours and the lowest/highest tokens; AUROC per layer; breakdowns."""
    summary = tables["summary"]
    figs = {}
    for i, ex in enumerate(tables["examples"]):  # each figure notes the weights of its own run
        figs[f"map_{i}"], _ = plots.plot_similarity_map(ex["image"], ex["mask"], ex["similarity"],
                                                        ex["params"], k=ex["k"], title=ex["title"])
        style.label_weights(figs[f"map_{i}"], ex["model"])
    figs["auroc_by_layer"], _ = plots.plot_auroc_by_layer(summary)
    runs = list(dict.fromkeys(summary["model"]))
    for run in runs:  # every run's breakdowns (none dropped), each named after its model when several
        for breakdown, name in (("area_bin", "by_area"), ("category", "by_category")):
            key = name if len(runs) == 1 else f"{name}_{run_slug(run)}"  # every run named after its model
            figs[key], ax = plots.plot_reversal_breakdown(summary, breakdown, model=run)
            style.label_weights(figs[key], summary.loc[summary["model"] == run, "weights_model"].iloc[0])
            if len(runs) > 1:
                ax.set_title(run, fontsize="small")
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="reversal", notebook="01_similarity_reversal", title="Similarity reversal",
    description="A gallery of images with similarity maps, referent contours and the "
                "lowest/highest-similarity tokens; AUROC against vision layer, one line per CLIP model; "
                "reversal by mask area and category.",
    command="litelvlm reversal", requires=("analysis.reversal.compute", "analysis.reversal.plots"),
    subdir="reversal", make_smoke=smoke_reversal, read=read_reversal, draw=draw_reversal,
    smoke_note="two random-weight `tiny336-random` CLIPs (seeds 0 and 1, 24x24 grid) on 16 COCO-128 val "
               "sentences with generated expressions (a tiny hand-made REFER folder when ../shared/data is "
               "absent)", results_files=("**/reversal.parquet",), tree=True, studies=("reversal",),
    extra_imports=("from analysis.reversal.figure_set import run_slug",),
    accepts=lambda config: not grid_run(config), together="all",
    read_runs=lambda runs: read_reversal(runs[0], runs),
    make_results="litelvlm reversal --model MODEL --out {out}/MODEL (one run per CLIP model)")
