"""Each stage's cost of a grounding call as a row's columns, no device rate needed (this project's
measurement): ``eval-grounding --stage-costs`` (the leaderboard's stage columns,
:mod:`analysis.common.stats.leaderboard`) and the counts ``validate`` and ``efficiency`` write with
``--stage-costs`` where they have no rate for a roofline.

* :func:`count_columns`: ``stage_<stage>_flops`` and ``stage_<stage>_weight_bytes`` of one counted call
  (:func:`litelvlm.cost.stage_count.count_stages`; the names :mod:`analysis.common.presentation.stage_plots`
  declares), for the stages asked.
* :func:`call_costs`: the whole call (the input's preparation, its prompt, ``ground``) timed by stage
  (``stage_<stage>_ms`` of :data:`BOARD_STAGES`), and, where asked, counted once more.

A method running the vision tower itself (``Method.uses_vision_tower``: FlowCut, IPCV and its compositions)
runs it again inside ``ground``, after the preparation ran it on every token for the image's other methods.
Its vision stage is charged its own run *in place of* that full run, in ``eval-grounding``, ``validate`` and
``efficiency`` alike: the vision stage (and the whole call) less that of the preparation's run, so that a
method pruning in the tower shows what it saves there. Timed, the preparation's run is the image's forwards
made again as the call made them (:func:`forwards_rerun`: a graph replay where the encoders are captured);
counted, one full run of the tower (``TowerContext.full_run``: the same FLOPs however it runs). The paper's
LLM-only figures (``layer_avg_tokens``, the FLOPs tables) are not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from analysis.common.presentation.stage_plots import STAGE_FLOPS, STAGE_MS, STAGE_WEIGHT_BYTES
from analysis.common.stats.leaderboard import BOARD_STAGES, STAGE_COLUMNS
from litelvlm.cost.stage_count import StageCount, count_stages
from litelvlm.cost.stages import COLUMNS, TOTAL, time_stages

#: the summary columns of :func:`call_costs` (the leaderboard's stage columns), in order: ms by stage of
#: :data:`~analysis.common.stats.leaderboard.BOARD_STAGES`, then FLOPs, then weight bytes
BOARD_COLUMNS = STAGE_COLUMNS
MS_COLUMNS = [STAGE_MS[s] for s in BOARD_STAGES]
COUNT_COLUMNS = [*(STAGE_FLOPS[s] for s in BOARD_STAGES), *(STAGE_WEIGHT_BYTES[s] for s in BOARD_STAGES)]
#: the stages charged a tower method's own run in place of the full one
REPLACED = ("vision", TOTAL)


def count_columns(counts: dict[str, StageCount], stages: Iterable[str] = COLUMNS) -> dict[str, float]:
    """``stage_<stage>_flops`` and ``stage_<stage>_weight_bytes`` of ``counts`` (one counted call's,
    :func:`litelvlm.cost.stage_count.count_stages`) for ``stages``."""
    stages = list(stages)
    return {**{STAGE_FLOPS[s]: float(counts[s].flops) for s in stages},
            **{STAGE_WEIGHT_BYTES[s]: float(counts[s].weight_bytes) for s in stages}}


def tower_rerun(pipe, spec, prepared) -> Callable[[], Any] | None:
    """A full run of the vision tower on ``prepared`` where the method ``spec`` runs the tower again itself
    (``Method.uses_vision_tower``), else None: what :func:`less_tower_counts` takes off a counted call."""
    return (lambda: pipe.tower_context(prepared).full_run()) if spec.uses_vision_tower else None


def forwards_rerun(spec, forwards: Callable[[], Any]) -> Callable[[], Any] | None:
    """``forwards`` (the input's image forwards made again, as the timed call's preparation makes them)
    where the method ``spec`` runs the vision tower itself, else None: what :func:`less_tower_ms` times,
    whose vision stage is the preparation's run of the tower."""
    return forwards if spec.uses_vision_tower else None


def in_place_of(ms: dict[str, float], rerun: float) -> dict[str, float]:
    """{stage: value} with the :data:`REPLACED` stages less ``rerun`` (the preparation's tower run's vision
    stage)."""
    return {s: v - rerun if s in REPLACED else v for s, v in ms.items()}


def preparation_tower_ms(pipe, forwards: Callable[[], Any]) -> float:
    """The vision stage (ms) of the image's ``forwards`` made again: the preparation's run of the tower, as
    the call's preparation makes it."""
    with torch.no_grad():
        return time_stages(pipe, forwards)[1]["vision"]


def less_tower_ms(pipe, ms: dict[str, float], forwards: Callable[[], Any] | None) -> dict[str, float]:
    """A timed call's {stage: ms} charged the method's own tower run in place of the preparation's (see the
    module): :func:`preparation_tower_ms` of ``forwards`` (:func:`forwards_rerun`) off the call's vision stage
    and total (``ms`` as it is without one)."""
    return ms if forwards is None else in_place_of(ms, preparation_tower_ms(pipe, forwards))


def less_tower_counts(pipe, counts: dict[str, StageCount], tower: Callable[[], Any] | None
                      ) -> dict[str, StageCount]:
    """A counted call's {stage: count} charged the same way as :func:`less_tower_ms`."""
    if tower is None:
        return counts
    with torch.no_grad():
        full = count_stages(pipe, tower)[1]["vision"]
    return {s: StageCount(*(a - b for a, b in zip(c, full, strict=True))) if s in REPLACED else c
            for s, c in counts.items()}


def counted(pipe, call: Callable[[], Any], stages: Iterable[str] = COLUMNS,
            tower: Callable[[], Any] | None = None) -> dict[str, float]:
    """:func:`count_columns` of one counted ``call()`` of ``pipe`` (under ``torch.no_grad``; ``tower``: see
    :func:`less_tower_counts`)."""
    with torch.no_grad():
        return count_columns(less_tower_counts(pipe, count_stages(pipe, call)[1], tower), stages)


def call_costs(pipe, call: Callable[[], Any], count: bool = False, tower: Callable[[], Any] | None = None,
               forwards: Callable[[], Any] | None = None) -> dict[str, float]:
    """The :data:`MS_COLUMNS` of one timed ``call()`` (the whole call) and, with ``count``, the
    :data:`COUNT_COLUMNS` of one more, counted. Where the call's method runs the vision tower again, the
    preparation's run comes off the call's vision stage and total: timed, the vision stage of ``forwards``
    (:func:`forwards_rerun`); counted, that of ``tower`` (:func:`tower_rerun`)."""
    with torch.no_grad():
        ms = less_tower_ms(pipe, time_stages(pipe, call)[1], forwards)
    out = {STAGE_MS[s]: float(ms[s]) for s in BOARD_STAGES}
    return out | counted(pipe, call, BOARD_STAGES, tower) if count else out


__all__ = ["BOARD_COLUMNS", "BOARD_STAGES", "COUNT_COLUMNS", "MS_COLUMNS", "REPLACED", "call_costs",
           "count_columns", "counted", "forwards_rerun", "in_place_of", "less_tower_counts", "less_tower_ms",
           "preparation_tower_ms", "tower_rerun"]
