"""Figure set 4, grounding against budget: cIoU/gIoU per method and budget, both protocols."""

from __future__ import annotations

import tempfile
from pathlib import Path

from analysis.common.presentation.caveats import null_results
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.grounding import plots
from analysis.grounding.command import run
from analysis.grounding.compute import load_grounding
from analysis.grounding.options import PROTOCOLS, GroundingArgs
from analysis.grounding.statistics import load_statistics
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.registry.families import DEFAULT_MODEL, card_of, load_pipeline

#: Methods and budgets of the smoke run (tiny random GLaMM, 24x24 = 576 visual tokens).
SMOKE_METHODS = "none,litelvlm,random,visionzip,prumerge,fastv,dart,sparsevlm"
SMOKE_BUDGETS = "144,36"
#: the COCO-128 images of the smoke run (two expressions each): two, so that the official protocol's
#: intervals, which resample images, exist (not image 71: its VisionZip mask at K = 36 changes by 16 pixels
#: between one and two torch threads, and the notebook test's kernel runs on another count than the command)
SMOKE_IMAGES = ["34", "81"]


def smoke_grounding(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """Both protocols on two COCO-128 images (two expressions each) with the tiny random GLaMM
    (a synthetic REFER folder when ../shared/data is absent)."""
    data = coco128_dir()
    pick = {"image_ids": SMOKE_IMAGES}
    if data is None:
        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
        pick = {"limit_images": 2}
    model = model or DEFAULT_MODEL
    pipe = load_pipeline(model)  # one model for both protocols
    for protocol in ("per-expression", "official"):
        run(GroundingArgs(refer_dir=str(data), out=str(out_dir / protocol), model=model, protocol=protocol,
                          methods=[SMOKE_METHODS], budgets=[SMOKE_BUDGETS], **pick),
            pipe=pipe, screen=screen)


def read_grounding(results_dir: Path) -> dict:
    """summary (both protocols), rows, difference and config of a grounding results folder, and its
    comparisons and claims (``analysis.grounding.statistics``; empty for folders written before them)."""
    return {**load_grounding(results_dir), **load_statistics(results_dir)}


def protocol_pair(run) -> object:
    """What groups a run with others: a run in a folder named after its protocol (``official/``,
    ``per-expression/``) is drawn with the other protocol's run of the same model beside it (the protocols
    side by side)."""
    ident, protocol = run.identity, run.config.get("protocol")
    if run.folder.name in PROTOCOLS and protocol == run.folder.name:
        return ident["family"], ident.get("model"), run.folder.parent
    return run.folder


def read_protocol_pair(folders: list[Path]) -> dict:
    """Both protocols' runs of one model (``<folder>/official``, ``<folder>/per-expression``): read
    together."""
    return read_grounding(folders[0].parent)


def grounding_notes(tables: dict, models: list) -> list[str]:
    """The null results of each protocol's summary (:func:`analysis.common.presentation.caveats.null_results`
    on cIoU and gIoU), each line naming its protocol."""
    summary = tables["summary"]
    found = []
    for protocol in summary["protocol"].unique() if "protocol" in summary else [None]:
        rows = summary[summary["protocol"] == protocol] if protocol is not None else summary
        found += [f"{protocol}: {line}" if protocol else line
                  for line in null_results(rows, ("ciou", "giou"), models)]
    return found


def draw_grounding(tables: dict) -> dict:
    """cIoU and gIoU against budget per protocol (95% bootstrap intervals where the results have them), the
    protocols side by side, their difference, and the paper's claims judged on these results."""
    summary, difference = tables["summary"], tables["difference"]
    figs = {}
    for metric in ("ciou", "giou"):
        for protocol in summary["protocol"].unique():
            figs[f"{metric}_{protocol}"], _ = plots.plot_iou_vs_budget(summary, metric, protocol=protocol)
        figs[f"{metric}_protocols"], _ = plots.plot_grounding_protocols(summary, metric)
        if not difference.empty:
            figs[f"{metric}_protocol_difference"], _ = plots.plot_protocol_difference(difference, metric)
    # claims.csv of each protocol: MET / MISSED on real weights, else not judged
    if not tables["claims"].empty:
        figs["claims"], _ = plots.plot_claims_table(tables["claims"], "The paper's claims (eval-grounding)")
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="grounding", notebook="04_grounding_vs_budget", title="Grounding against budget",
    description="cIoU and gIoU against the visual-token budget, one line per method with its 95% bootstrap "
                "interval (images resampled under both protocols, each image's expressions kept together; a "
                "hit rate's interval is Clopper-Pearson's) and the unpruned model as a dashed reference with "
                "its interval as a band, for the `per-expression` and `official` protocols side by side, the "
                "difference between the protocols, and the paper's claims table (`claims.csv`: LiteLVLM's "
                "share of the unpruned score, its margin over each existing method with that pair's paired "
                "test from comparisons.csv; MET or MISSED on real weights, 'not judged' on random or toy "
                "weights) (`litelvlm eval-grounding`, one --out per protocol under "
                "`grounding/per-expression` and `grounding/official`).",
    command="litelvlm eval-grounding", requires=("analysis.grounding.compute", "analysis.grounding.plots"),
    subdir="grounding", make_smoke=smoke_grounding, read=read_grounding, draw=draw_grounding,
    smoke_note=f"the random-weight `{DEFAULT_MODEL}` {card_of(DEFAULT_MODEL).display_name} (its tiny preset) "
               "on two COCO-128 images with two generated expressions each (a synthetic REFER folder when "
               "../shared/data is absent); the numbers mean nothing",
    results_files=("grounding.parquet", "per-expression/grounding.parquet", "official/grounding.parquet"),
    studies=("grounding",), together=protocol_pair, read_runs=read_protocol_pair, notes=grounding_notes,
    make_results="litelvlm eval-grounding --protocol per-expression --out {out}/per-expression "
                 "(and --protocol official --out {out}/official)")
