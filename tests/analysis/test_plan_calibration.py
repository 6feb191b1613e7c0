"""``plan``'s calibration (issue #67, item 8): it shows progress, times each method and budget on the model's
thread count with repeats, gives an estimate that never falls as the budget grows, labels the estimate when
the machine was busy, and writes under ``runs/`` unless told."""

from __future__ import annotations

import json

from analysis.plan import compute
from analysis.plan.options import PlanArgs
from litelvlm.cli import main


def test_a_real_calibration_shows_progress_and_is_monotonic_in_the_budget(shared_data, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--data-dirs", str(shared_data), "--models", "tiny-random:0", "--methods",
                 "litelvlm", "--budgets", "32,64,128", "--calibrate", "1", "--repeats", "2", "--out",
                 str(out), "--tree", str(tmp_path / "tree")]) == 0
    assert "plan: calibrating tiny-random:0" in capsys.readouterr().err
    plan = json.loads((out / "plan.json").read_text())
    per = plan["calibration"]["seconds_per_image"]["tiny-random:0"]
    assert per["litelvlm@32"] <= per["litelvlm@64"] <= per["litelvlm@128"] and per["none@all"] > 0
    assert plan["calibration"]["repeats"] == 2
    assert "the median of 2 repeat(s)" in (out / "plan.md").read_text()


def test_a_busy_machine_labels_the_estimate(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compute, "calibrate", lambda a, model, methods, s: ({("none", "all"): 1.0,
                                                                             ("litelvlm", "64"): 0.5}, 1))
    monkeypatch.setattr(compute, "busy_warning", lambda threads: "the machine was busy while timing (load 7)")
    out = tmp_path / "plan"
    assert main(["plan", "--data-dirs", str(shared_data), "--methods", "litelvlm", "--budgets", "64",
                 "--out", str(out), "--tree", str(tmp_path / "tree")]) == 0
    assert "labelled BUSY" in capsys.readouterr().err
    assert "**BUSY MACHINE**: the machine was busy" in (out / "plan.md").read_text()
    record = json.loads((out / "plan.json").read_text())["calibration"]
    assert record["busy"].startswith("the machine was busy")


def test_the_plan_and_its_tree_go_under_runs_unless_told():
    a = PlanArgs(data_dirs=["data"])
    assert a.out.startswith("runs/") and a.tree.startswith("runs/")
