"""``litelvlm plan``'s video tables: which methods a family's video path runs, and the calibration of the
video runs.

A video run's work is ``eval-video``'s own per-video work (:func:`analysis.video.compute.video_part` on
Ref-DAVIS-17,
:func:`analysis.video.protocols.expression_part` on MeViS and Refer-YouTube-VOS) on the family's loaded
runner. Every expression is segmented over all its video's frames, so the work grows with the video's frames
times its expressions: the calibration times it on the first ``--calibrate`` videos of the first video split
(after one untimed warm-up video) and gives seconds per frame of an expression (``expression-frames``), which
a run's estimate multiplies by its split's expression-frames over ``--gpus`` (EXTRAPOLATED, with the
calibration's n). Each (method, budget) is timed alone, then all together as a command runs them (each video's
clips prepared once), the alone times scaled to sum to the joint one (the image calibration instead prepares
each image once and takes the median of repeats, :func:`analysis.plan.compute.calibrate`).
"""

from __future__ import annotations

import time

from analysis.video import VideoArgs, calibration
from litelvlm.budget import Budget
from litelvlm.methods import is_baseline
from litelvlm.registry.families import video_eval


def refused(model: str, methods: list[str], budgets: list[Budget]) -> dict[str, str]:
    """The methods of ``methods`` that ``model``'s video path refuses, each with its reason (light: no
    weights)."""
    family = video_eval(model)
    return {m: "; ".join(why) for m in methods if not is_baseline(m)
            and (why := family.method_errors([m], budgets))}


def expression_frames(records: list) -> int:
    """The frames an ``eval-video`` run segments for one video's records: each expression over all its
    frames."""
    return sum(len(r.frames) for r in records)


def calibrate_video(a, model: str, methods: list[str], s) -> tuple[dict[tuple[str, str], float], int, int]:
    """(seconds per expression-frame of each (method, budget), videos timed, their expression-frames) of
    ``model`` on the first ``--calibrate`` videos of split ``s`` after one untimed warm-up video."""
    va = VideoArgs(out="", video_dir=s.root, dataset=s.dataset, split=s.split, model=model, clip=a.clip,
                   methods=[m for m in methods if not is_baseline(m)], budgets=a.video_budgets, seed=a.seed,
                   device=a.device, dtype=a.dtype)
    _, groups, pairs, work = calibration(va)
    videos = list(groups)[: a.calibrate + 1]
    work(videos[0], pairs)   # warm-up, untimed
    timed = videos[1:] or videos
    frames = sum(expression_frames(groups[v]) for v in timed)
    alone = {}
    for pair in pairs:
        start = time.perf_counter()
        for v in timed:
            work(v, [pair])
        alone[(pair[0], "all" if is_baseline(pair[0]) else str(pair[1]))] = (time.perf_counter()
                                                                             - start) / frames
    start = time.perf_counter()
    for v in timed:
        work(v, pairs)
    share = (time.perf_counter() - start) / frames / sum(alone.values())
    return {k: v * share for k, v in alone.items()}, len(timed), frames


__all__ = ["calibrate_video", "expression_frames", "refused"]
