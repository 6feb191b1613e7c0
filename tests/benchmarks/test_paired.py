"""benchmarks/paired.py: interleaved pairs, median and spread, MISSED when a target is missed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from paired import paired_ratios, report  # noqa: E402


def test_paired_ratios_interleave_and_alternate_order():
    calls = []
    ratios = paired_ratios(lambda: calls.append("A"), lambda: calls.append("B"), repeats=4, warmup=1)
    assert len(ratios) == 4 and all(r > 0 for r in ratios)
    assert calls == ["A", "B", "A", "B", "B", "A", "A", "B", "B", "A"]  # warm-up, then AB BA AB BA


def test_report_says_missed_and_noise():
    missed = report("x", [1.1, 1.17, 1.18], target=1.2)
    assert "median 1.170 [1.100, 1.180] over 3 paired runs" in missed and missed.endswith("MISSED")
    assert report("y", [2.0, 3.0, 4.0], target=1.2).endswith("met")
    assert "MISSED" in report("z", [1.5, 1.2], target=1.3, higher_is_better=False)
    assert "distinguishable from noise" in report("t", [0.9, 1.1, 1.0])
