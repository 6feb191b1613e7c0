"""Figure set 8, positions: the position switch (kept tokens at original RoPE positions, renumbered, or
PosPad) per method, on the sample image."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.presentation.smoke_inputs import coco128_dir
from analysis.common.runs.command import Screen
from analysis.positions import PositionsArgs, plots, run
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.registry.families import DEFAULT_MODEL, card_of

#: the smoke run: the tiny random GLaMM, every method but the slow saliency oracle, two budgets
SMOKE_BUDGETS = ["64", "16"]


def smoke_positions(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """``litelvlm positions`` on one COCO-128 image with the tiny random GLaMM (a synthetic REFER folder when
    ../shared/data is absent)."""
    data = coco128_dir()
    if data is None:
        data = write_tiny_refer(Path(tempfile.mkdtemp(prefix="litelvlm-refer-")))
    rc = run(PositionsArgs(refer_dir=str(data), out=str(out_dir), model=model or DEFAULT_MODEL,
                           budgets=SMOKE_BUDGETS), screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm positions exited with status {rc}")


def read_positions(results_dir: Path) -> dict:
    """The ``positions.csv`` table of a results folder."""
    return {"positions": pd.read_csv(Path(results_dir) / "positions.csv")}


def draw_positions(tables: dict) -> dict:
    """One figure per budget: per method, the [SEG]-state distance of renumber and pad from keep, and each
    rule's mask IoU with the unpruned model."""
    table = tables["positions"]
    figs = {}
    for budget in sorted(table["budget"].unique(), reverse=True):
        figs[f"switch_{budget}"], _ = plots.plot_position_switch(table, budget=budget)
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="positions", notebook="08_positions", title="Position switch",
    description="What the position switch does (this project's study, after the GAP paper's argument and "
                "FocusUI's PosPad): every method's kept tokens at their original RoPE positions (keep), "
                "renumbered (renumber) or with one marker per run of dropped tokens (pad), on the sample "
                "image: the distance of renumber's and pad's [SEG] states from keep's, and each rule's mask "
                "IoU with the unpruned model's. Each label names the method's official rule.",
    command="litelvlm positions", requires=("analysis.positions.compute", "analysis.positions.plots"),
    subdir="positions", make_smoke=smoke_positions, read=read_positions, draw=draw_positions,
    smoke_note=f"`litelvlm positions` on one COCO-128 image with the random-weight `{DEFAULT_MODEL}` "
               f"{card_of(DEFAULT_MODEL).display_name}, every method at K = 64, 16",
    results_files=("positions.csv",), studies=("positions",),
    make_results="litelvlm positions --refer-dir REFER --out {out}")
