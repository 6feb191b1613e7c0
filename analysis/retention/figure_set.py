"""Figure set 3, token retention: the input, similarity-aware and context-aware tokens, and the kept set."""

from __future__ import annotations

from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import SMOKE_MODEL, coco128_dir
from analysis.common.runs.command import Screen
from analysis.retention import plots
from analysis.retention.command import run
from analysis.retention.compute import load_retention
from analysis.retention.options import RetentionArgs


def smoke_retention(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """Small retention results: one COCO-128 image (or a synthetic scene), the tiny 24x24 random CLIP."""
    data = coco128_dir()
    run(RetentionArgs(out=str(out_dir), model=model or SMOKE_MODEL, refer_dir=str(data) if data else None,
                      limit_images=1), screen=screen)


def read_retention(results_dir: Path) -> dict:
    """The retention tables of a results folder."""
    return load_retention(results_dir)


def draw_retention(tables: dict) -> dict:
    """Input, similarity-aware and context-aware tokens, and the kept set per method and budget."""
    table, images, config = tables["retention"], tables["images"], tables["config"]
    figs = {}
    for i, image_id in enumerate(table["image_id"].unique()):
        image = images[image_id]
        # per image on a model family
        grid = tuple(config.get("grids", {}).get(str(image_id), config["grid"]))
        figs[f"grid_{i}"], _ = plots.plot_retention_grid(image, table, grid, image_id=image_id)
        for method in plots.staged_methods(table):
            figs[f"stages_{method}_{i}"], _ = plots.plot_retention_stages(
                image, table, grid, method=method, image_id=image_id)
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="retention", notebook="03_token_retention", title="Token retention",
    description="Like the paper's animation: the input, the similarity-aware tokens, the context-aware "
                "tokens, and the final kept set at 576/192/64/32 for every CLIP-side method side by side.",
    command="litelvlm retention", requires=("analysis.retention.compute", "analysis.retention.plots"),
    subdir="retention", make_smoke=smoke_retention, read=read_retention, draw=draw_retention,
    smoke_note="the random-weight `tiny336-random` CLIP (24x24 grid) on one COCO-128 image with its "
               "generated expressions (a synthetic scene when ../shared/data is absent)",
    results_files=("retention.parquet",), studies=("retention",),
    make_results="litelvlm retention --out {out}")
