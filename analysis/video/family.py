"""Figure family 11, video: J&F per pruning method against the per-frame budget (``litelvlm eval-video``, VideoGLaMM
or UniPixel's video path), labelled with the model family and the weights that made it."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.common import style
from analysis.figures.family import Family
from analysis.video import plots

#: the smoke run: the tiny random VideoGLaMM on one synthetic video, two methods at the paper's budgets
SMOKE_METHODS = "vispruner,litelvlm"
SMOKE_BUDGETS = "196,81"


def smoke_video(out_dir: Path, model: str | None = None) -> None:
    """``litelvlm eval-video`` on two 4-frame synthetic videos (first annotator set) with the tiny random
    VideoGLaMM: two, so that the intervals, which resample videos, exist."""
    from analysis.video import VideoArgs, run

    rc = run(VideoArgs(out=str(out_dir), model=model or "videoglamm-tiny-random:0", methods=[SMOKE_METHODS],
                       budgets=[SMOKE_BUDGETS], anno_sets=["0"], synthetic_videos=2, synthetic_frames=4,
                       synthetic_seed=11))
    if rc:
        raise RuntimeError(f"litelvlm eval-video exited with status {rc}")


def read_video(results_dir: Path) -> dict:
    """The ``summary.csv`` table of an ``eval-video`` folder, the models that made it and their family, and its
    comparisons and claims (empty for a folder written before them)."""
    import pandas as pd

    from analysis.video.statistics import load_statistics

    config = json.loads((Path(results_dir) / "config.json").read_text())
    return {"summary": pd.read_csv(Path(results_dir) / "summary.csv"),
            "models": [config.get("model"), config.get("clip")], "family": config.get("family", "videoglamm"),
            **load_statistics(results_dir)}


def draw_video(tables: dict) -> dict:
    """J&F, J and F against the per-frame budget (95% bootstrap intervals over videos where the results have them),
    and the paper's claims judged on these results, each labelled with its results' weights."""
    figs = {}
    for name, metric in (("jf", "J&F"), ("j", "J"), ("f", "F")):
        fig, _ = plots.plot_jf_vs_budget(tables["summary"], metric, family=tables.get("family", "videoglamm"))
        style.label_weights(fig, *tables["models"])
        figs[name] = fig
    if not tables["claims"].empty:  # claims.csv: MET / MISSED on real weights, else not judged
        figs["claims"], _ = plots.plot_claims_table(tables["claims"], "The paper's claims (eval-video, J&F)")
        style.label_weights(figs["claims"], *tables["models"])
    return figs


#: the figure family, registered in :data:`analysis.figures.registry.FAMILIES`
FAMILY = Family(
    name="video", notebook="11_video_referring_segmentation", title="Referring video segmentation (VideoGLaMM, UniPixel)",
    description="J&F (and J, F) of VideoGLaMM (or UniPixel's video path, labelled so) on a Ref-DAVIS-layout "
                "folder (DAVIS 2017 unsupervised task per annotator set, averaged over the sets), one line per pruning "
                "method against the per-frame budget with its 95% bootstrap interval over videos (CLIP tokens kept per "
                "frame, 576 -> 196, 81; LLM-side methods and UniPixel keep the same fraction of the visual tokens), "
                "the unpruned model dashed with its interval as a band, and the paper's claims table on J&F "
                "(`claims.csv`; 'not judged' on random or toy weights). Pruning "
                "VideoGLaMM or UniPixel's video is this project's adaptation. The paper's video numbers need VideoGLaMM's RVOS "
                "fine-tuned weights, which are not public; the numbers here come from the weights named on each "
                "figure (random weights by default).",
    command="litelvlm eval-video", requires=("analysis.video.compute", "analysis.video.plots"),
    subdir="video", make_smoke=smoke_video, read=read_video, draw=draw_video,
    smoke_note="`litelvlm eval-video` with the random-weight `videoglamm-tiny-random:0` on two 4-frame synthetic "
               "videos, VisPruner and LiteLVLM at 196 and 81 tokens per frame; the numbers mean nothing",
    results_files=("summary.csv",), studies=("video",),
    make_results="litelvlm eval-video --out {out}")
