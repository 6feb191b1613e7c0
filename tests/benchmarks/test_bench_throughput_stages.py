"""benchmarks/bench_throughput.py's time by stage: with ``--out``, ``stages.csv`` of its batch-1 ``ground``
calls (per model, method and budget) beside ``throughput.csv``, both written through one run folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from litelvlm.cost.stages import COLUMNS

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_throughput import main  # noqa: E402


def test_batch_one_calls_are_timed_by_stage(tmp_path, capsys):
    assert main(["--methods", "none", "litelvlm", "--budgets", "64", "--batch-sizes", "1", "--repeats", "1",
                 "--threads", "1", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stages.csv", "throughput.csv"]  # nothing else left
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert list(stages.columns) == ["model", "method", "budget", "stage", "ms", "share"]
    assert list(dict.fromkeys(zip(stages["method"], stages["budget"].astype(str)))) == [("none", "all"),
                                                                                         ("litelvlm", "64")]
    for _, run in stages.groupby(["method", "budget"]):
        ms = run.set_index("stage")["ms"]
        assert list(ms.index) == list(COLUMNS)
        assert ms["vision"] == 0 and ms["prefill"] > 0 and ms["mask"] > 0   # ground on prepared images
        assert ms.drop("total").sum() == pytest.approx(ms["total"])
