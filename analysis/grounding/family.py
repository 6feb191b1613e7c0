"""Figure family 4, grounding against budget: cIoU/gIoU per method and budget, both protocols."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.figures.family import Family
from analysis.figures.smoke_inputs import coco128_dir
from analysis.grounding import plots

#: Methods and budgets of the smoke run (tiny random GLaMM, 24x24 = 576 visual tokens).
SMOKE_METHODS = "none,litelvlm,random,visionzip,prumerge,fastv,dart,sparsevlm"
SMOKE_BUDGETS = "144,36"


def smoke_grounding(out_dir: Path, model: str | None = None) -> None:
    """Both protocols on one COCO-128 image (two expressions) with the tiny random GLaMM
    (a synthetic REFER folder when ../shared/data is absent)."""
    from analysis.grounding.compute import GroundingArgs, run_grounding
    from litelvlm.families import load_pipeline

    data = coco128_dir()
    pick = {"image_ids": ["34"]}
    if data is None:
        from litelvlm.data.fixtures import write_tiny_refer

        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
        pick = {"limit_images": 1}
    model = model or "tiny-random:0"
    pipe = load_pipeline(model)  # one model for both protocols
    for protocol in ("per-expression", "official"):
        run_grounding(GroundingArgs(refer_dir=str(data), out=str(out_dir / protocol), model=model,
                                    protocol=protocol, methods=[SMOKE_METHODS], budgets=[SMOKE_BUDGETS], **pick),
                      pipe=pipe)


def read_grounding(results_dir: Path) -> dict:
    """summary (both protocols), rows, difference and config of a grounding results folder."""
    from analysis.grounding.compute import load_grounding

    return load_grounding(results_dir)


def draw_grounding(tables: dict) -> dict:
    """cIoU and gIoU against budget per protocol, the protocols side by side, and their difference."""
    summary, difference = tables["summary"], tables["difference"]
    figs = {}
    for metric in ("ciou", "giou"):
        for protocol in summary["protocol"].unique():
            figs[f"{metric}_{protocol}"], _ = plots.plot_iou_vs_budget(summary, metric, protocol=protocol)
        figs[f"{metric}_protocols"], _ = plots.plot_grounding_protocols(summary, metric)
        if not difference.empty:
            figs[f"{metric}_protocol_difference"], _ = plots.plot_protocol_difference(difference, metric)
    return figs


#: the figure family, registered in :data:`analysis.figures.registry.FAMILIES`
FAMILY = Family(
    name="grounding", notebook="04_grounding_vs_budget", title="Grounding against budget",
    description="cIoU and gIoU against the visual-token budget, one line per method with the unpruned model "
                "as a dashed reference, for the `per-expression` and `official` protocols side by side, and "
                "the difference between the protocols (`litelvlm eval-grounding`, one --out per protocol "
                "under `grounding/per-expression` and `grounding/official`).",
    command="litelvlm eval-grounding", requires=("analysis.grounding.compute", "analysis.grounding.plots"),
    subdir="grounding", make_smoke=smoke_grounding, read=read_grounding, draw=draw_grounding,
    smoke_note="the random-weight `tiny-random` GLaMM (tiny 24x24 CLIP, tiny SAM) on one COCO-128 image with "
               "two generated expressions (a synthetic REFER folder when ../shared/data is absent); the "
               "numbers mean nothing",
    results_files=("grounding.parquet", "per-expression/grounding.parquet", "official/grounding.parquet"),
    make_results="litelvlm eval-grounding --protocol per-expression --out {out}/per-expression "
                 "(and --protocol official --out {out}/official)")
