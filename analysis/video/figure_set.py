"""Figure set 11, video: J&F per pruning method against the per-frame budget (``litelvlm eval-video``, each
family's video path), labelled with the model family (its card) and the weights that made it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.common.presentation import style
from analysis.common.presentation.caveats import null_results
from analysis.common.presentation.family_text import video_families
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import read_identity
from analysis.video import VideoArgs, plots, run
from analysis.video.statistics import load_statistics
from litelvlm.registry.families import DEFAULT_VIDEO_MODEL, card, family_of
from litelvlm.video.datasets import REF_DAVIS

#: the smoke run: the default video model (random weights) on synthetic videos, two methods at the paper's
#: budgets
SMOKE_METHODS = "vispruner,litelvlm"
SMOKE_BUDGETS = "196,81"


def smoke_video(out_dir: Path, model: str | None = None, screen: Screen = Screen()) -> None:
    """``litelvlm eval-video`` on two 4-frame synthetic videos (first annotator set) with the default video
    model (random weights): two, so that the intervals, which resample videos, exist."""
    rc = run(VideoArgs(out=str(out_dir), model=model or DEFAULT_VIDEO_MODEL, methods=[SMOKE_METHODS],
                       budgets=[SMOKE_BUDGETS], anno_sets=["0"], synthetic_videos=2, synthetic_frames=4,
                       synthetic_seed=11), screen=screen)
    if rc:
        raise RuntimeError(f"litelvlm eval-video exited with status {rc}")


def video_labels(config: dict) -> plots.VideoLabels:
    """What the figures of an ``eval-video`` run say of its model family
    (:func:`litelvlm.registry.families.card`): its display name (a family whose input is an image: its video
    path), the budget reading its run recorded, and the note on the weights the run recorded (or its family's
    video path's); a folder that records no family is of the default video model's family, the only one before
    families were recorded. Its dataset and split are the recorded ones (a run records ``dataset`` unless it
    is Ref-DAVIS-17, the default)."""
    ident = read_identity(config) or {}
    name = config.get("family") or ident.get("family") or family_of(DEFAULT_VIDEO_MODEL)
    fam = card(name)
    title = fam.display_name if fam.input == "video" else f"{fam.display_name} (video path)"
    note = config.get("note") or video_eval_note(fam)
    note = f"{note[:1].upper()}{note[1:]}".rstrip(".") + "."
    reading = config.get("budget_reading")
    return plots.VideoLabels(title,
                             f"per-frame budget (of 576): {reading}" if reading else plots.PER_FRAME_CLIP,
                             note, config.get("dataset") or REF_DAVIS, config.get("split") or "")


def video_eval_note(fam) -> str:
    """The note on the weights of family card ``fam``'s video path (empty without one)."""
    if not fam.video_eval:
        return ""
    return fam.video_eval.get().note


def read_video(results_dir: Path) -> dict:
    """The ``summary.csv`` table of an ``eval-video`` folder, the models that made it and what its figures say
    of their family (:func:`video_labels`), and its comparisons and claims (empty for a folder written before
    them)."""
    config = json.loads((Path(results_dir) / "config.json").read_text())
    return {"summary": pd.read_csv(Path(results_dir) / "summary.csv"),
            "models": [config.get("model"), config.get("clip")], "labels": video_labels(config),
            **load_statistics(results_dir)}


def video_notes(tables: dict, models: list) -> list[str]:
    """The null results of an ``eval-video`` run's summary
    (:func:`analysis.common.presentation.caveats.null_results`)."""
    return null_results(tables["summary"], ("J", "F", "J&F"), [*models, *tables.get("models", [])])


def draw_video(tables: dict) -> dict:
    """J&F, J and F against the per-frame budget (95% bootstrap intervals over videos where the results have
    them), and the paper's claims judged on these results, each labelled with its results' weights."""
    figs = {}
    suffix = tables["labels"].suffix   # the run's dataset (none for Ref-DAVIS-17): jf_mevis, ...
    for name, metric in (("jf", "J&F"), ("j", "J"), ("f", "F")):
        fig, _ = plots.plot_jf_vs_budget(tables["summary"], metric, labels=tables["labels"])
        style.label_weights(fig, *tables["models"])
        figs[name + suffix] = fig
    if not tables["claims"].empty:  # claims.csv: MET / MISSED on real weights, else not judged
        claims, _ = plots.plot_claims_table(tables["claims"], "The paper's claims (eval-video, J&F, "
                                            f"{tables['labels'].protocol})")
        style.label_weights(claims, *tables["models"])
        figs["claims" + suffix] = claims
    return figs


#: the display names of the families with a video path, in the figure set's texts
_NAMES = video_families()

#: the figure set, registered in :data:`analysis.figures.registry.FIGURE_SETS`
FIGURE_SET = FigureSet(
    name="video", notebook="11_video_referring_segmentation", title="Referring video segmentation",
    description=f"J&F (and J, F) of each family's video path ({_NAMES}; the run's family named on each "
                "figure) on Ref-DAVIS-17 (DAVIS 2017 unsupervised task per annotator set, averaged over the "
                "sets) or MeViS `valid_u` (its per-expression J&F; the protocol the run used named in each "
                "title, its files named `..._mevis`), one line per pruning method against the per-frame "
                "budget with its 95% bootstrap interval over videos (CLIP tokens kept per frame, 576 -> "
                "196, 81; LLM-side methods and a family seeing the video as merged tokens keep the same "
                "fraction of the visual tokens), the unpruned model dashed with its interval as a band, and "
                "the paper's claims table on J&F (`claims.csv`; 'not judged' on random or toy weights). "
                "Pruning a video is this project's adaptation. The paper's video numbers need weights that "
                "are not public (each figure says its run's note on the weights); the numbers here come "
                "from the weights named on each figure (random weights by default).",
    command="litelvlm eval-video", requires=("analysis.video.compute", "analysis.video.plots"),
    subdir="video", make_smoke=smoke_video, read=read_video, draw=draw_video,
    smoke_note=f"`litelvlm eval-video` with the random-weight `{DEFAULT_VIDEO_MODEL}` on two 4-frame "
               "synthetic videos, VisPruner and LiteLVLM at 196 and 81 tokens per frame; the numbers mean "
               "nothing",
    results_files=("summary.csv",), studies=("video",), notes=video_notes,
    make_results="litelvlm eval-video --out {out}")
