"""Figure set 12, paired comparisons: per metric, every method minus the unpruned model, minus LiteLVLM and,
where the run holds them, minus ``random`` and ``downsample`` (the leaderboard's baselines), against the
budget, with the 95% interval of the paired swap test and its significance (``comparisons.csv`` of an
``eval-grounding`` or ``eval-video`` folder; each folder drawn on its own)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.grounding import GroundingArgs, run
from analysis.paired import plots
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.registry.families import DEFAULT_MODEL, card_of

#: the smoke run: the tiny random GLaMM, official protocol, three images (three resampled units)
SMOKE_METHODS = "none,litelvlm,random,visionzip,fastv"
SMOKE_BUDGETS = "144,36"


def smoke_paired(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """``litelvlm eval-grounding`` (official protocol) on three COCO-128 images with the tiny random GLaMM (a
    synthetic REFER folder when ../shared/data is absent)."""
    data = coco128_dir()
    if data is None:
        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
    rc = run(GroundingArgs(refer_dir=str(data), out=str(out_dir), model=model or DEFAULT_MODEL,
                           protocol="official", limit_images=3, methods=[SMOKE_METHODS],
                           budgets=[SMOKE_BUDGETS]), screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm eval-grounding exited with status {rc}")


def read_paired(results_dir: Path) -> dict:
    """The ``comparisons.csv`` of one results folder and what made it (its command's protocol, if any)."""
    d = Path(results_dir)
    config = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
    return {"comparisons": pd.read_csv(d / "comparisons.csv"), "protocol": config.get("protocol")}


def draw_paired(tables: dict) -> dict:
    """Per metric, each method minus the unpruned model and minus LiteLVLM, against the budget."""
    comparisons = tables["comparisons"]
    figs = {}
    for metric in comparisons["metric"].unique():
        for reference in comparisons["reference"].unique():   # the unpruned model, then LiteLVLM
            figs[f"{plots.metric_slug(metric)}_vs_{reference}"], _ = plots.plot_paired_differences(
                comparisons, metric, reference)
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="paired", notebook="12_paired_comparisons", title="Paired comparisons of the methods",
    description="Per metric (cIoU, gIoU, a family's own metric; J, F, J&F), every method minus the unpruned "
                "model and minus LiteLVLM at each budget, on the same images or expressions "
                "(`eval-grounding`) or videos (`eval-video`): the difference with the unadjusted 95% "
                "interval that inverts the paired swap test, a filled marker where the run's one criterion "
                "marks it (Holm-adjusted p < 0.05 within the comparison's family, its metrics; "
                "`comparisons.csv`'s `p_adjusted`), so a bar may leave 0 with a hollow marker (each results "
                "folder drawn on its own).",
    command="litelvlm eval-grounding / eval-video",
    requires=("analysis.common.stats.accuracy_stats", "analysis.paired.plots"),
    subdir="paired", make_smoke=smoke_paired, read=read_paired, draw=draw_paired,
    smoke_note=f"`litelvlm eval-grounding` (official protocol) with the random-weight `{DEFAULT_MODEL}` "
               f"{card_of(DEFAULT_MODEL).display_name} on three COCO-128 images (a synthetic REFER folder "
               "when ../shared/data is absent); the numbers mean "
               "nothing", results_files=("comparisons.csv",), studies=("grounding", "video"),
    make_results="litelvlm eval-grounding --out {out} (or litelvlm eval-video --out {out})")
