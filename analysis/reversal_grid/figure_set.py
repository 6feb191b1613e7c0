"""Figure set 10, the reversal on a family's merged grid: the same CLIP ranked on its own patches and on the
merged Qwen2.5-VL tokens LiteLVLM selects on a family that maps CLIP onto them (``litelvlm reversal --grid
FAMILY``, this project's study option), AUROC per layer side by side, and similarity maps on the merged
grid."""

from __future__ import annotations

from pathlib import Path

from analysis.common.measures.merged_grid import CLIP_GRID, merged_grid_families
from analysis.common.presentation import style
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import SMOKE_MODEL, refer_data
from analysis.common.runs.command import Screen
from analysis.reversal import ReversalArgs, plots, run
from analysis.reversal.figure_set import grid_run, read_reversal
from litelvlm.registry.families import card

#: the family whose merged grid the smoke results measure: the first whose card declares one
SMOKE_GRID = merged_grid_families()[0]
#: the model whose LLM input space the smoke results measure: that family's documented offline one (random
#: weights)
SMOKE_GRID_MODEL = card(SMOKE_GRID).default_model


def smoke_reversal_grid(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """One random-weight CLIP on 16 COCO-128 val sentences, on the padded image, ranked on CLIP's grid and on
    the merged grid of :data:`SMOKE_GRID`, and that family's model in its LLM input space (a tiny hand-made
    REFER folder when ../shared/data is absent)."""
    data = refer_data(Path(out_dir))
    for grid in (CLIP_GRID, SMOKE_GRID):
        rc = run(ReversalArgs(out=str(Path(out_dir) / f"{grid}-grid"), model=model or SMOKE_MODEL,
                              refer_dir=str(data), split="val", limit_sentences=16, layers=["all"],
                              n_boot=200, pad_to_square=True, grid=grid,
                              save_maps=0 if grid == CLIP_GRID else 2), screen=screen)
        if rc:
            raise RuntimeError(f"litelvlm reversal --grid {grid} failed (status {rc})")
    rc = run(ReversalArgs(out=str(Path(out_dir) / "llm-space"), space="llm", grid=SMOKE_GRID,
                          model=SMOKE_GRID_MODEL, refer_dir=str(data), split="val", limit_sentences=16,
                          n_boot=200, save_maps=1), screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm reversal --space llm failed (status {rc})")


def read_reversal_grid(results_dir: Path) -> dict:
    """The runs under the folder (one per grid) and the similarity-map examples, read as figure set 1 reads
    its runs."""
    return read_reversal(results_dir)


def draw_reversal_grid(tables: dict) -> dict:
    """AUROC per layer on both grids; similarity maps with the referent on the merged grid."""
    figs = {}
    for i, ex in enumerate(tables["examples"]):
        figs[f"map_{i}"], _ = plots.plot_similarity_map(ex["image"], ex["mask"], ex["similarity"],
                                                        ex["params"],
                                                        k=ex["k"], title=ex["title"] + ", merged grid")
        style.label_weights(figs[f"map_{i}"], ex["model"])
    summary = tables["summary"]
    if "space" not in summary or (summary["space"] != "llm").any():   # a CLIP run: vision layers to draw
        figs["auroc_by_layer"], _ = plots.plot_auroc_by_layer(summary)
    figs.update(draw_llm_space(tables["summary"]))
    return figs


def draw_llm_space(summary) -> dict:
    """With a run in the LLM's input space (``--space llm``): its AUROC beside each CLIP run's at its last
    layer, labelled with the weights that made them (none without such a run)."""
    if "space" not in summary or not (summary["space"] == "llm").any():
        return {}
    fig, _ = plots.plot_space_auroc(summary)
    style.label_weights(fig, *dict.fromkeys(summary["weights_model"]))
    return {"auroc_llm_space": fig}


#: the display name of :data:`SMOKE_GRID`'s family, in the figure set's texts
_NAME = card(SMOKE_GRID).display_name

#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="reversal_grid", notebook="10_reversal_merged_grid", title="Similarity reversal on a family's "
    "merged grid",
    description="Does the reversal hold where LiteLVLM selects on a family that maps CLIP onto its merged "
                f"grid ({_NAME})? The same CLIP on the padded image, its similarity ranked on its own "
                "patches and mapped onto the family's merged Qwen2.5-VL tokens by overlap area (`litelvlm "
                f"reversal --grid {SMOKE_GRID} --pad-to-square`, this project's study option): AUROC against "
                "vision layer per grid, and similarity maps on the merged grid; and the same question in "
                "the family's LLM input space (`--space llm`: each merged token's relevance to the prompt's "
                "mean instruction-token embedding), its AUROC beside the CLIP runs'.",
    command=f"litelvlm reversal --grid {SMOKE_GRID}",
    requires=("analysis.reversal.compute", "analysis.reversal.plots"),
    subdir="reversal_grid", make_smoke=smoke_reversal_grid, read=read_reversal_grid, draw=draw_reversal_grid,
    smoke_note="one random-weight `tiny336-random` CLIP on 16 COCO-128 val sentences with generated "
               f"expressions, on both grids, and the random `{SMOKE_GRID_MODEL}` in its LLM input space (a "
               "tiny hand-made REFER folder when ../shared/data is absent)",
    results_files=("**/reversal.parquet",), tree=True, studies=("reversal",), accepts=grid_run,
    together="all", read_runs=lambda runs: read_reversal(runs[0], runs),
    extra_imports=("from analysis.reversal_grid.figure_set import draw_llm_space",),
    make_results="litelvlm reversal --model MODEL --pad-to-square --grid clip|FAMILY --out {out}/GRID (one "
                 "run per grid); optionally litelvlm reversal --space llm --grid FAMILY --model MODEL --out "
                 "{out}/llm-space")
