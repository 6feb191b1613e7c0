"""Figure family 9, grounding on UniPixel: cIoU/gIoU per method and budget on the second model family
(Qwen2.5-VL + SAM 2), the methods it offers, drawn as family 4 draws GLaMM's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.figures.family import Family
from analysis.figures.smoke_inputs import coco128_dir
from analysis.grounding import GroundingArgs, plots, run
from analysis.grounding.family import SMOKE_BUDGETS, SMOKE_METHODS, read_grounding

#: the model of the smoke run: random weights of the tiny UniPixel preset
SMOKE_MODEL = "unipixel-tiny-random:5"


def smoke_unipixel(out_dir: Path, model: str | None = None) -> None:
    """UniPixel's protocol (one expression per prompt) on one COCO-128 image with the tiny random UniPixel, the
    methods of family 4's smoke set that the family offers (a synthetic REFER folder when ../shared/data is
    absent)."""
    from litelvlm.families import load_pipeline

    data = coco128_dir()
    pick = {"image_ids": ["34"]}
    if data is None:
        from litelvlm.data.fixtures import write_tiny_refer

        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
        pick = {"limit_images": 1}
    model = model or SMOKE_MODEL
    pipe = load_pipeline(model)
    methods = ",".join(m for m in SMOKE_METHODS.split(",") if pipe.method_error(m) is None)
    run(GroundingArgs(refer_dir=str(data), out=str(out_dir / "per-expression"), model=model,
                      protocol="per-expression", methods=[methods], budgets=[SMOKE_BUDGETS], **pick), pipe=pipe)


def read_unipixel(results_dir: Path) -> dict:
    """summary, rows and config of a UniPixel eval-grounding folder (read as family 4 reads GLaMM's)."""
    return read_grounding(results_dir)


def draw_unipixel(tables: dict) -> dict:
    """cIoU and gIoU against budget, drawn as family 4 draws them (one protocol: no side-by-side figure)."""
    summary = tables["summary"]
    figs = {}
    for metric in ("ciou", "giou"):
        for protocol in summary["protocol"].unique():
            figs[f"{metric}_{protocol}"], _ = plots.plot_iou_vs_budget(summary, metric, protocol=protocol)
    return figs


#: the figure family, registered in :data:`analysis.figures.registry.FAMILIES`
FAMILY = Family(
    name="unipixel", notebook="09_unipixel_grounding", title="Grounding on UniPixel (Qwen2.5-VL + SAM 2)",
    description="cIoU and gIoU against the visual-token budget on the second model family, UniPixel, one line "
                "per method it offers (those acting with the LLM, and LiteLVLM, its ablations and random through "
                "an external CLIP's scores mapped onto the merged grid; kept tokens keep their M-RoPE ids: both "
                "this project's adaptations) with the unpruned model as a dashed reference (`litelvlm "
                "eval-grounding --model unipixel-...`, UniPixel's protocol: one expression per prompt).",
    command="litelvlm eval-grounding --model unipixel-...",
    requires=("analysis.grounding.compute", "analysis.grounding.plots", "litelvlm.unipixel.pipeline"),
    subdir="unipixel", make_smoke=smoke_unipixel, read=read_unipixel, draw=draw_unipixel,
    smoke_note="the random-weight `unipixel-tiny-random` (tiny Qwen2.5-VL, tiny SAM 2) on one COCO-128 image "
               "(a synthetic REFER folder when ../shared/data is absent); the numbers mean nothing",
    results_files=("per-expression/grounding.parquet", "grounding.parquet"), studies=("grounding",),
    model_families=("unipixel",), replaces="grounding",
    make_results="litelvlm eval-grounding --model unipixel-3b-random --protocol per-expression "
                 "--out {out}/per-expression")
