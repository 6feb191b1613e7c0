"""Figure set 2, text attention sink: [EOS]->[SOS] per layer and head, one example sentence, the ablation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.common.presentation.figure_set import FigureSet, figure_set_dir
from analysis.common.presentation.smoke_inputs import SMOKE_MODEL, refer_data
from analysis.common.runs.command import Screen
from analysis.sink import SinkArgs, plots, run


def smoke_sink(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """The random-weight 24x24 CLIP on a few COCO-128 val sentences, with the ablation on their images."""
    data = refer_data(Path(out_dir))
    rc = run(SinkArgs(out=str(out_dir), model=model or SMOKE_MODEL, refer_dir=str(data),
                      image_dir=str(data / "images"), split="val", limit_sentences=16, ablate_from=[0, 1],
                      n_boot=200, examples=2), screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm sink failed (status {rc})")


def read_sink(results_dir: Path) -> dict:
    """The sink summary, the example attention rows and, when present, the ablation summary."""
    root = figure_set_dir(results_dir, "sink")
    tables = {"summary": pd.read_csv(root / "summary.csv")}
    if (root / "eos_attention_examples.parquet").exists():
        tables["examples"] = pd.read_parquet(root / "eos_attention_examples.parquet")
    if (root / "ablation_summary.csv").exists():
        tables["ablation"] = pd.read_csv(root / "ablation_summary.csv")
    return tables


def draw_sink(tables: dict) -> dict:
    """[EOS]->[SOS] and [EOS]->content over layer x head, one sentence per layer, the ablation bars."""
    figs = {}
    figs["sos_heatmap"], _ = plots.plot_sink_heatmap(tables["summary"], "sos_mean")
    figs["sos_over_uniform"], _ = plots.plot_sink_heatmap(tables["summary"], "sos_mean", relative=True)
    figs["content_heatmap"], _ = plots.plot_sink_heatmap(tables["summary"], "content_sum_mean")
    if "examples" in tables:
        figs["example"], _ = plots.plot_eos_attention_example(tables["examples"])
    if "ablation" in tables:
        figs["ablation"], _ = plots.plot_ablation_bars(tables["ablation"])
    return figs


#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="sink", notebook="02_text_attention_sink", title="Text attention sink",
    description="[EOS]->[SOS] against content tokens per layer and head, one example sentence drawn like the "
                "project page's interactive view, and the sink ablation.",
    command="litelvlm sink", requires=("analysis.sink.compute", "analysis.sink.plots"), subdir="sink",
    make_smoke=smoke_sink, read=read_sink, draw=draw_sink,
    smoke_note="the random-weight `tiny336-random` CLIP on 16 COCO-128 val sentences, with the ablation on "
               "their images (a tiny hand-made REFER folder when ../shared/data is absent)",
    results_files=("sink.parquet",), studies=("sink",),
    make_results="litelvlm sink --out {out}")
