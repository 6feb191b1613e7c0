"""``plan``'s estimate is the median of repeated timings and never falls as the budget grows (issue #67,
item 8: LiteLVLM at 0.25 s an image at K = 128 and 1.22 s at K = 64)."""

from __future__ import annotations

import random

import pytest

from analysis.plan.timing import increasing, monotonic_in_budget, per_image


def test_one_slow_repeat_does_not_move_the_estimate():
    assert per_image([[0.25, 0.26, 9.0], [0.30, 0.31, 0.29]]) == pytest.approx((0.26 + 0.30) / 2)


def test_the_issues_numbers_become_monotonic_in_the_budget():
    raw = {("litelvlm", "64"): 1.22, ("litelvlm", "128"): 0.25, ("litelvlm", "192"): 0.30,
           ("none", "all"): 2.0}
    fixed = monotonic_in_budget(raw)
    assert fixed[("litelvlm", "64")] <= fixed[("litelvlm", "128")] <= fixed[("litelvlm", "192")]
    assert fixed[("none", "all")] == 2.0
    assert sum(fixed[("litelvlm", k)] for k in ("64", "128", "192")) == pytest.approx(1.22 + 0.25 + 0.30)


def test_increasing_is_non_decreasing_and_keeps_an_ordered_sequence():
    rng = random.Random(0)
    for _ in range(200):
        values = [rng.random() for _ in range(rng.randint(1, 6))]
        out = increasing(values)
        assert len(out) == len(values) and all(a <= b + 1e-12 for a, b in zip(out, out[1:]))
        assert sum(out) == pytest.approx(sum(values))
    assert increasing([1.0, 2.0, 3.0]) == [1.0, 2.0, 3.0]
