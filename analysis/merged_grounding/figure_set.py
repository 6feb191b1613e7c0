"""Figure set 9, grounding on the merged-grid families: cIoU/gIoU per method and budget on the families that
hold one expression per prompt on a merged Qwen2.5-VL grid (image families with no official multi-expression
protocol: their card's ``official_sample`` is None), the methods each offers, drawn as figure set 4 draws the
paper's model."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.grounding import GroundingArgs, plots, run
from analysis.grounding.figure_set import SMOKE_BUDGETS, SMOKE_METHODS, grounding_notes, read_grounding
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.registry.families import cards, load_pipeline

#: the families whose grounding runs this figure set draws (in registry order)
MERGED_FAMILIES = tuple(c for c in cards() if c.input == "image" and c.official_sample is None)
#: the model of the smoke run: the first such family's documented offline model (random weights)
SMOKE_MODEL = MERGED_FAMILIES[0].default_model


def smoke_merged_grounding(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """The family's protocol (one expression per prompt) on one COCO-128 image with :data:`SMOKE_MODEL`, the
    methods of figure set 4's smoke set that the family offers (a synthetic REFER folder when ../shared/data
    is absent)."""

    data = coco128_dir()
    pick = {"image_ids": ["34"]}
    if data is None:
        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
        pick = {"limit_images": 1}
    model = model or SMOKE_MODEL
    pipe = load_pipeline(model)
    methods = ",".join(m for m in SMOKE_METHODS.split(",") if pipe.method_error(m) is None)
    run(GroundingArgs(refer_dir=str(data), out=str(out_dir / "per-expression"), model=model,
                      protocol="per-expression", methods=[methods], budgets=[SMOKE_BUDGETS], **pick),
        pipe=pipe, screen=screen)


def read_merged_grounding(results_dir: Path) -> dict:
    """summary, rows and config of an eval-grounding folder of such a family (read as figure set 4 reads its
    runs)."""
    return read_grounding(results_dir)


def draw_merged_grounding(tables: dict) -> dict:
    """cIoU and gIoU against budget, drawn as figure set 4 draws them (one protocol: no side-by-side
    figure)."""
    summary = tables["summary"]
    figs = {}
    for metric in ("ciou", "giou"):
        for protocol in summary["protocol"].unique():
            figs[f"{metric}_{protocol}"], _ = plots.plot_iou_vs_budget(summary, metric, protocol=protocol)
    return figs


#: the display names of :data:`MERGED_FAMILIES`, in the figure set's texts
_NAMES = ", ".join(c.display_name for c in MERGED_FAMILIES)

#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="grounding_merged_grid", notebook="09_merged_grid_grounding",
    title=f"Grounding on the merged-grid families ({_NAMES}: Qwen2.5-VL + SAM 2)",
    description="cIoU and gIoU against the visual-token budget on the families that hold one expression per "
                f"prompt on a merged Qwen2.5-VL grid ({_NAMES}), one line per method each offers (those "
                "acting with the LLM, and, where the family maps an external CLIP's scores onto the merged "
                "grid, LiteLVLM, its ablations and random; kept tokens keep their M-RoPE ids: both this "
                "project's adaptations) with the unpruned model as a dashed reference (`litelvlm "
                "eval-grounding --model MODEL`, the family's protocol: one expression per prompt).",
    command="litelvlm eval-grounding --model MODEL",
    requires=("analysis.grounding.compute", "analysis.grounding.plots",
              *dict.fromkeys(c.pipeline.module for c in MERGED_FAMILIES)),
    subdir="grounding_merged_grid", make_smoke=smoke_merged_grounding, read=read_merged_grounding,
    draw=draw_merged_grounding,
    smoke_note=f"the random-weight `{SMOKE_MODEL}` on one COCO-128 image (a synthetic REFER folder when "
               "../shared/data is absent); the numbers mean nothing",
    results_files=("per-expression/grounding.parquet", "grounding.parquet"), studies=("grounding",),
    model_families=tuple(c.name for c in MERGED_FAMILIES), replaces="grounding", notes=grounding_notes,
    make_results="litelvlm eval-grounding --model MODEL --protocol per-expression --out {out}/per-expression")
