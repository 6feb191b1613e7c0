"""The paper's margin claim agrees with the paired tests of the same run (issue #67, item 3): over many seeded
random runs (small synthetic unit statistics), every ``margin_over_5pct`` row of ``claims.csv`` carries the
interval, p-value and Holm-adjusted p-value of the comparison of the same pair in ``comparisons.csv``, so the
two never disagree on significance; the percentile bootstrap over the best competitor of each replicate, which
the claim used before, does disagree on the same runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import bootstrap as B

COMPETITORS = ("fastv", "vispruner", "visionzip")


def random_run(seed: int, units: int = 10, budgets=(64,)) -> acc.Stats:
    """A run of cIoU-like statistics: per unit 1-3 rows, a union and an intersection per method; the methods
    differ by a small random shift of their share, so that some pairs differ and most do not."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, 4, size=units)
    keys = np.repeat(np.arange(units), rows)
    union = rng.lognormal(7, 0.5, size=len(keys))
    base = rng.beta(2, 3, size=len(keys))
    stats: acc.Stats = {("none", 576): {"ciou": B.unit_stat(base * union, keys, union, 1e-10)}}
    for budget in budgets:
        for method in ("litelvlm", *COMPETITORS):
            share = np.clip(base + rng.normal(0, 0.05) + rng.normal(0, 0.08, size=len(keys)), 0, 1)
            stats[(method, budget)] = {"ciou": B.unit_stat(share * union, keys, union, 1e-10)}
    return stats


def significant(lo, hi) -> bool:
    return bool(lo > 0 or hi < 0)


def old_margin_interval(stats: acc.Stats, budget: int, n_boot: int, seed: int) -> tuple[float, float]:
    """The claim's interval before: LiteLVLM minus the best competitor OF EACH REPLICATE, percentile."""
    lite = stats[("litelvlm", budget)]["ciou"]
    idx = B.draw(lite.n_units, n_boot, seed)
    best = np.max([stats[(m, budget)]["ciou"].replicates(idx) for m in COMPETITORS], axis=0)
    return B.percentile(lite.replicates(idx) - best)


def test_a_margin_claim_and_the_comparison_of_the_same_pair_never_disagree():
    runs, disagreed_before, rows_seen, significant_seen = 25, 0, 0, 0
    for seed in range(runs):
        stats = random_run(seed)
        comparisons = acc.comparisons_table(stats, ["ciou"], 200, seed, "image")
        claims = acc.claims_table(stats, ["ciou"], 200, seed, "real", comparisons)
        margins = claims[claims.claim == "margin_over_5pct"]
        assert len(margins) == len(COMPETITORS)   # one row per competitor (and budget)
        for _, claim in margins.iterrows():
            pair = comparisons[(comparisons.metric == "ciou") & (comparisons.budget == claim.budget)
                               & (comparisons.method == claim.compared_with)
                               & (comparisons.reference == "litelvlm")]
            assert len(pair) == 1
            pair = pair.iloc[0]
            assert claim.value == -pair.difference
            assert (claim.lo, claim.hi) == (-pair.difference_hi, -pair.difference_lo)
            assert (claim.p, claim.p_adjusted) == (pair.p, pair.p_adjusted)
            # one significance: the interval leaves 0 exactly where the comparison's does, where p < 0.05
            assert significant(claim.lo, claim.hi) == significant(pair.difference_lo, pair.difference_hi) \
                == (pair.p < 0.05)
            rows_seen += 1
            significant_seen += significant(claim.lo, claim.hi)
        for budget in (64,):
            lite = stats[("litelvlm", budget)]["ciou"].value()
            best = max(COMPETITORS, key=lambda m: stats[(m, budget)]["ciou"].value())
            pair = comparisons[(comparisons.budget == budget) & (comparisons.method == best)
                               & (comparisons.reference == "litelvlm")].iloc[0]
            assert pair.value - lite == pytest.approx(pair.difference)
            disagreed_before += significant(*old_margin_interval(stats, budget, 200, seed)) != \
                significant(pair.difference_lo, pair.difference_hi)
    assert rows_seen == runs * 3 and 0 < significant_seen < rows_seen   # both outcomes occur
    assert disagreed_before > 0   # the old claim's interval did disagree on some of these runs


def test_the_retention_claim_is_its_comparison_with_none():
    stats = random_run(3)
    comparisons = acc.comparisons_table(stats, ["ciou"], 200, 3, "image")
    claims = acc.claims_table(stats, ["ciou"], 200, 3, "real", comparisons)
    for _, claim in claims[claims.claim == "retains_90pct"].iterrows():
        pair = comparisons[(comparisons.budget == claim.budget) & (comparisons.method == "litelvlm")
                           & (comparisons.reference == "none")].iloc[0]
        assert (claim.value, claim.lo, claim.hi, claim.p, claim.p_adjusted) == (
            pair.ratio, pair.ratio_lo, pair.ratio_hi, pair.p, pair.p_adjusted)
    # without the comparisons given, the claims compute the same ones
    assert claims.equals(acc.claims_table(stats, ["ciou"], 200, 3, "real"))
    assert isinstance(claims, pd.DataFrame) and list(claims.columns) == acc.CLAIM_COLUMNS


def test_the_claims_figure_draws_a_row_per_competitor_with_its_paired_test():
    import matplotlib

    matplotlib.use("Agg")
    from analysis.common.presentation.stat_plots import plot_claims_table

    claims = acc.claims_table(random_run(5, units=6), ["ciou"], 100, 5, "real")
    fig, ax = plot_claims_table(claims)
    cells = {k: c.get_text().get_text() for k, c in ax.tables[0].get_celld().items()}
    head = [cells[(0, j)] for j in range(8)]
    assert head[3:5] == ["against", "estimate [95% interval]"] and head[5] == "p (adjusted)"
    shown = {(cells[(i, 3)], cells[(i, 5)]) for i in range(1, len(claims) + 1)}
    want = {(r.compared_with, f"Holm p {r.p_adjusted:.2g}, family of {r.family_size}")
            for r in claims.itertuples()}
    assert shown == want and {"fastv", "vispruner", "visionzip", "none"} == {a for a, _ in shown}
    assert "margin: LiteLVLM minus each existing method" in ax.get_title()
    from tests.figure_checks import reviewer_flaws

    assert not any(reviewer_flaws(fig).values())   # no hidden tick label past the canvas, nothing clipped
    matplotlib.pyplot.close(fig)


def test_claims_from_1_to_30_units_have_an_interval_or_say_n():
    """``claims.csv`` and the claims figure at every n: a finite interval from the paired test's 6 units on
    (its smallest p is 2 / 2^n); below, NaN bounds and ``no interval (n = k, ...)`` in the note and the
    figure's cell; never an infinity."""
    import matplotlib.pyplot as plt

    from analysis.common.presentation.stat_plots import plot_claims_table
    from analysis.common.stats import permutation

    for units in range(1, 31):
        stats = random_run(units, units=units)
        claims = acc.claims_table(stats, ["ciou"], 200, units, "real")
        finite = np.isfinite(claims[["lo", "hi"]].to_numpy(float))
        assert not np.isinf(claims[["lo", "hi"]].to_numpy(float)).any(), units
        if units >= permutation.min_units():
            assert finite.all(), (units, claims[["lo", "hi"]])
            assert not claims.note.str.contains("no interval").any(), units
        else:
            assert not finite.any(), units
            assert (claims.note == acc.no_interval(units)).all(), (units, list(claims.note))
            assert acc.no_interval(units) == f"no interval (n = {units}, fewer than the paired test's 6)"
        try:
            _, ax = plot_claims_table(claims)
            texts = [c.get_text().get_text() for c in ax.tables[0].get_celld().values()]
            assert not any("inf" in t for t in texts), texts
            said = [t for t in texts if "no interval" in t]
            assert bool(said) == (units < permutation.min_units()), (units, said)
            assert all(f"(n = {units})" in t for t in said), said
        finally:
            plt.close("all")
