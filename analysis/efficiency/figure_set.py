"""Figure set 6, efficiency: FLOPs, prefill time, CUDA time and activation memory against the budget."""

from __future__ import annotations

from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet
from analysis.common.runs.command import Screen
from analysis.efficiency import plots
from analysis.efficiency.command import run
from analysis.efficiency.compute import load_efficiency
from analysis.efficiency.options import EfficiencyArgs
from litelvlm.budget import Budget
from litelvlm.registry.families import cards

#: the smoke run: the tiny GLaMM's FLOPs and meta-device memory, these methods at these budgets
SMOKE_METHODS = ["none", "litelvlm", "prumerge", "tome", "divprune", "fastv", "dart", "sparsevlm"]
SMOKE_BUDGETS = "576,192,64"


def smoke_efficiency(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """Small efficiency results: FLOPs and meta-device memory of the tiny GLaMM (no timing, a few seconds)."""
    rc = run(EfficiencyArgs(out=str(out_dir), arch="tiny", flops_only=True, methods=SMOKE_METHODS,
                            budgets=Budget.parse_list(SMOKE_BUDGETS), attn=["eager"], figures=False),
             screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm efficiency exited with status {rc}")


def read_efficiency(results_dir: Path) -> dict:
    """The efficiency tables of a results folder."""
    return load_efficiency(results_dir)


def draw_efficiency(tables: dict) -> dict:
    """FLOPs, prefill and CUDA-time speedups and memory per method against the budget, per attention."""
    df = tables["efficiency"]
    figs = {}
    for attn in df["attn"].unique():
        figs[f"flops_{attn}"], _ = plots.plot_flops_vs_budget(df, attn=attn)
        if "prefill_speedup" in df and df["prefill_speedup"].notna().any():
            figs[f"prefill_{attn}"], _ = plots.plot_prefill_vs_budget(df, attn=attn)
        if plots.has_cuda_time(df):
            figs[f"cuda_{attn}"], _ = plots.plot_cuda_time_vs_budget(df, attn=attn)
        figs[f"memory_{attn}"], _ = plots.plot_memory_vs_budget(df, attn=attn)
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="efficiency", notebook="06_efficiency", title="Efficiency",
    description="FLOPs, prefill time, CUDA time and memory per budget on the paper's definitions (its "
                "compiled loop's FLOPs and storing activation, the decoder-layer-loop prefill; CUDA time in "
                "this project's reading), with the paper's numbers and the FLOPs-ideal limit drawn in.",
    command="litelvlm efficiency", requires=("analysis.efficiency.compute", "analysis.efficiency.plots"),
    subdir="efficiency", make_smoke=smoke_efficiency, read=read_efficiency, draw=draw_efficiency,
    smoke_note="`litelvlm efficiency --arch tiny --flops-only` (the tiny "
               f"{next(c.display_name for c in cards() if c.paper_preset)} on the meta device: FLOPs and "
               "activation bytes, no timing; timing needs a real run, see the README)",
    results_files=("efficiency.csv",), studies=("efficiency",), timed=("prefill_", "cuda_"),
    make_results="litelvlm efficiency --out {out}")
