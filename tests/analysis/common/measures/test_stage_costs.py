"""analysis.common.measures.stage_costs: a counted call's columns by stage, and a tower method's vision stage
charged its own run in place of the full one (the whole call's too, no other stage)."""

from __future__ import annotations

import types

from analysis.common.measures import stage_costs as sc
from analysis.common.measures.stage_costs import COUNT_COLUMNS, count_columns, in_place_of
from litelvlm.cost.stage_count import StageCount
from litelvlm.cost.stages import COLUMNS


def test_count_columns_name_each_stages_flops_and_weight_bytes():
    counts = {s: StageCount(10 * i, i) for i, s in enumerate(COLUMNS)}
    out = count_columns(counts, ("vision", "prefill"))
    assert out == {"stage_vision_flops": 10.0, "stage_prefill_flops": 30.0, "stage_vision_weight_bytes": 1.0,
                   "stage_prefill_weight_bytes": 3.0}
    assert set(COUNT_COLUMNS) <= set(count_columns(counts))


def test_a_full_tower_run_comes_off_the_vision_stage_and_the_total_only():
    ms = {"vision": 5.0, "selection": 1.0, "prefill": 3.0, "total": 12.0}
    assert in_place_of(ms, 2.0) == {"vision": 3.0, "selection": 1.0, "prefill": 3.0, "total": 10.0}


def test_a_tower_methods_call_is_timed_less_its_preparations_own_run(monkeypatch):
    """The vision stage taken off a tower method's timed call is that of the image's forwards made again, as
    the call's preparation ran the tower (a graph replay where the encoders are captured), not an eager full
    run's; its counts still come off by the full run (the same FLOPs however it runs)."""
    zero = dict.fromkeys(COLUMNS, 0.0)
    times = {"call": zero | {"vision": 8.0, "prefill": 3.0, "total": 20.0},
             "forwards": zero | {"vision": 2.0, "mask": 5.0, "total": 9.0}}
    monkeypatch.setattr(sc, "time_stages", lambda pipe, fn: (None, times[fn()]))
    out = sc.call_costs(object(), lambda: "call", forwards=lambda: "forwards")
    assert out["stage_vision_ms"] == 6.0 and out["stage_total_ms"] == 18.0 and out["stage_prefill_ms"] == 3.0
    forwards = object()
    assert sc.forwards_rerun(types.SimpleNamespace(uses_vision_tower=True), forwards) is forwards
    assert sc.forwards_rerun(types.SimpleNamespace(uses_vision_tower=False), forwards) is None
