"""The accuracy tables' statistics (``analysis.common.stats.accuracy_stats`` with
``analysis.grounding.statistics`` and ``analysis.video.statistics``) on hand-made rows with known answers: the
units resampled, cIoU recomputed as a ratio of sums in every resample (against a slow loop over the rows), the
paired comparisons and Holm, the claims and their verdicts, determinism under the seed; and their plots."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import bootstrap as B
from analysis.common.stats import permutation as P
from analysis.grounding import statistics as gs

matplotlib.use("Agg")


def _rows(protocol="official", methods=(("none", 576, 1.0), ("litelvlm", 64, 0.95), ("fastv", 64, 0.80),
                                        ("random", 64, 0.99)), images=12, seed=0) -> pd.DataFrame:
    """Grounding rows: 3 sentences per image, each method's intersection a fixed share of the unpruned
    one's."""
    rng = np.random.default_rng(seed)
    union = rng.integers(200, 2000, size=images * 3)
    base = np.floor(union * rng.uniform(0.2, 0.9, size=len(union)))
    out = []
    for method, budget, share in methods:
        for k in range(len(union)):
            inter = np.floor(base[k] * share * rng.uniform(0.97, 1.03))
            out.append({"protocol": protocol, "method": method, "budget": budget, "image_id": 100 + k // 3,
                        "ref_id": k, "ann_id": k, "sent_id": 1000 + k, "turn": k % 3,
                        "intersection": int(inter), "union": int(union[k]), "iou": inter / (union[k] + 1e-5)})
    return pd.DataFrame(out)


def slow_ciou_interval(rows: pd.DataFrame, unit_col: str, n_boot: int, seed: int) -> tuple[float, float]:
    """Draw units, then loop over every row of each drawn unit adding up I and U."""
    units = sorted(rows[unit_col].unique())
    by_unit = {u: list(zip(g["intersection"], g["union"])) for u, g in rows.groupby(unit_col)}
    idx = np.random.default_rng(seed).integers(0, len(units), size=(n_boot, len(units)))
    reps = []
    for draw in idx:
        i = u = 0.0
        for pos in draw:
            for a, b in by_unit[units[pos]]:
                i, u = i + a, u + b
        reps.append(i / (u + 1e-10))
    return tuple(np.quantile(reps, [0.025, 0.975]))


@pytest.mark.parametrize("protocol, unit_col", [("official", "image_id"), ("per-expression", "image_id")])
def test_grounding_units_are_images_under_both_protocols_and_ciou_is_a_ratio_of_sums(protocol, unit_col):
    rows = _rows(protocol)
    unit = gs.resample_unit(rows)
    assert unit == "image"   # an image's expressions are resampled together (issue #67, item 9)
    stats = gs.metric_stats(rows, unit)
    g = rows[(rows.method == "fastv")]
    assert stats[("fastv", 64)]["ciou"].n_units == g[unit_col].nunique()
    assert stats[("fastv", 64)]["ciou"].value() == pytest.approx(g.intersection.sum()
                                                                 / (g.union.sum() + 1e-10))
    assert stats[("fastv", 64)]["giou"].value() == pytest.approx(g.iou.mean())
    _, lo, hi = B.interval(stats[("fastv", 64)]["ciou"], 400, 3)
    assert (lo, hi) == pytest.approx(slow_ciou_interval(g, unit_col, 400, 3), rel=1e-12)


def test_intervals_sit_beside_their_values_and_leave_the_old_columns_alone():
    from analysis.common.grounding.grounding_scoring import CIOU_EPS, summarize

    assert gs.CIOU_EPS == CIOU_EPS
    rows = _rows()
    summary = summarize(rows)
    got = acc.with_intervals(summary, gs.metric_stats(rows, "image"), ["ciou", "giou"], 200, 0, "image")
    assert list(got.columns) == ["method", "budget", "ciou", "ciou_lo", "ciou_hi", "ciou_mc", "giou",
                                 "giou_lo", "giou_hi", "giou_mc", "n", "unit", "units", "heavy_tails"]
    assert (got.unit == "image").all() and (got.units == 12).all() and (got.heavy_tails == "").all()
    assert got[list(summary.columns)].equals(summary)
    assert (got.ciou_lo < got.ciou_hi).all() and (got.ciou_mc > 0).all()
    stat = gs.metric_stats(rows, "image")[("fastv", 64)]["ciou"]
    row = got[got.method == "fastv"].iloc[0]   # the studentized interval, not the percentile one
    assert (row.ciou_lo, row.ciou_hi, row.ciou_mc) == B.studentized(stat, 200, 0, bounds=(0.0, 1.0))[1:]


def test_comparisons_pair_every_method_with_none_and_litelvlm_and_holm_within_each_comparison():
    rows = _rows()
    stats = gs.metric_stats(rows, "image")
    table = acc.comparisons_table(stats, ["ciou", "giou"], 300, 4, "image")
    ciou = table[table.metric == "ciou"]
    assert set(zip(ciou.method, ciou.reference)) == {("fastv", "none"), ("fastv", "litelvlm"),
                                                     ("litelvlm", "none"),
                                                      ("random", "none"), ("random", "litelvlm")}
    row = ciou[(ciou.method == "fastv") & (ciou.reference == "litelvlm")].iloc[0]
    want = P.paired_test(stats[("fastv", 64)]["ciou"], stats[("litelvlm", 64)]["ciou"], 300, 4)
    assert row.difference == pytest.approx(want["difference"]) and row.p == pytest.approx(want["p"])
    assert (row.difference_lo, row.difference_hi) == pytest.approx(
        (want["difference_lo"], want["difference_hi"]))
    assert row.difference == pytest.approx(0.80 / 0.95 * row.reference_value - row.reference_value, rel=0.05)
    for _, family in table.groupby(["method", "budget", "reference"]):   # a comparison's cIoU and gIoU
        np.testing.assert_allclose(family.p_adjusted, B.holm(family.p.to_numpy()))
    assert (table.correction == "holm").all() and (table.family_size == 2).all() and (
        ciou.unit == "image").all()
    kept = ciou[(ciou.method == "litelvlm") & (ciou.reference == "none")].iloc[0]
    assert kept.ratio == pytest.approx(0.95, abs=0.01) and kept.ratio_lo < kept.ratio < kept.ratio_hi
    # one pair of interval and test: every interval excludes 0 (the ratio's 1) exactly where p < 0.05
    leaves = ~((table.difference_lo <= 0) & (0 <= table.difference_hi))
    assert (leaves == (table.p < 0.05)).all() and (leaves
                                                   == ~((table.ratio_lo <= 1) & (1 <= table.ratio_hi))).all()
    assert (table.test == "exact swap test (2^12 patterns)").all() and (table.p_mc == 0).all()


def test_claims_known_answers_and_not_judged_on_random_weights(monkeypatch):
    # LiteLVLM keeps 95% of the unpruned score (MET); fastv 80% and random 99%, but random is no "existing
    # method": LiteLVLM's margin over fastv is ~0.15 of the unpruned ~0.5 cIoU, ~7 points (MET)
    rows = _rows()
    stats = gs.metric_stats(rows, "image")
    real = acc.claims_table(stats, ["ciou"], 300, 0, "real")
    assert list(real.claim) == ["retains_90pct", "margin_over_5pct"]
    keep, margin = real.iloc[0], real.iloc[1]
    assert keep.verdict == "MET" and keep.value == pytest.approx(0.95, abs=0.01) and keep.interval_clears
    assert margin.compared_with == "fastv" and margin.verdict == "MET"
    assert keep.mc == 0 and margin.mc == 0   # 12 images: the exact test's intervals have no Monte Carlo error
    assert margin.p < 0.05 and margin.lo > 0   # the paired test's interval, p and Holm's p
    none = stats[("none", 576)]["ciou"].value()
    assert margin.value == pytest.approx(stats[("litelvlm", 64)]["ciou"].value()
                                         - stats[("fastv", 64)]["ciou"].value())
    assert margin.value == pytest.approx(0.15 * none, rel=0.1)
    random = acc.claims_table(stats, ["ciou"], 300, 0, "random")
    assert (random.verdict == "not judged").all() and random.interval_clears.isna().all()
    assert random.value.tolist() == pytest.approx(real.value.tolist())
    # the margin and the share MISSED: a competitor better than LiteLVLM, LiteLVLM at 85% of the unpruned
    # model
    worse = gs.metric_stats(_rows(methods=(("none", 576, 1.0), ("litelvlm", 64, 0.85), ("dart", 64, 0.9),
                                           ("litelvlm-ctx", 64, 1.0), ("llm-attention", 64, 1.0))), "image")
    got = acc.claims_table(worse, ["ciou"], 300, 0, "real")
    assert list(got.verdict) == ["MISSED", "MISSED"] and got.iloc[1].compared_with == "dart"
    assert not got.iloc[0].interval_clears and got.iloc[1].value < 0


def test_claims_not_judged_without_their_reference():
    stats = gs.metric_stats(_rows(methods=(("litelvlm", 64, 0.9), ("random", 64, 1.0))), "image")
    got = acc.claims_table(stats, ["ciou"], 100, 0, "real")
    assert list(got.verdict) == ["not judged", "not judged"]
    assert list(got.note) == ["no unpruned run", "no existing method run at this budget"]
    without = acc.claims_table(gs.metric_stats(_rows(methods=(("none", 576, 1.0),)), "image"), ["ciou"], 100,
                               0, "real")
    assert list(without.note) == ["litelvlm was not run"] * 2


def test_the_tables_are_deterministic_under_the_seed():
    stats = gs.metric_stats(_rows(images=20), "image")   # over 16 images: Monte Carlo swap tests

    def tables(seed):
        return (acc.comparisons_table(stats, ["ciou"], 200, seed, "image").to_csv(),
                acc.claims_table(stats, ["ciou"], 200, seed, "real").to_csv())

    assert tables(5) == tables(5) and tables(5) != tables(6)


def test_video_statistics_equal_the_summary_table():
    from analysis.video.compute import summary_table
    from analysis.video.statistics import metric_stats

    rng = np.random.default_rng(1)
    objects = pd.DataFrame([{"video": f"v{v}", "anno_set": s, "object": f"v{v}_{o}", "method": m, "budget": b,
                             "J": rng.random(), "F": rng.random()} for m,
                            b in (("none", 576), ("litelvlm", 81))
                            for v in range(5) for s in range(2) for o in range(1 + v % 2)])
    expr = objects.rename(columns={"object": "exp_id"}).assign(context_tokens=None, llm_visual_tokens=3328)
    summary = summary_table(expr, objects, [("none", 576), ("litelvlm", 81)])
    stats = metric_stats(expr, objects, own=["unipixel_J", "unipixel_F", "unipixel_J&F"])
    for _, row in summary.iterrows():
        for metric in ("J", "F", "J&F"):
            assert stats[(row.method, row.budget)][metric].value() == pytest.approx(row[metric], rel=1e-12)
        e = expr[expr.method == row.method]
        assert stats[(row.method, row.budget)]["unipixel_J"].value() == pytest.approx(e.J.mean(), rel=1e-12)
    # DAVIS's J over videos by a slow loop: per set the mean over the drawn videos' objects, then over the
    # sets
    o = objects[objects.method == "litelvlm"]
    videos = sorted(o.video.unique())
    idx = B.draw(len(videos), 150, 2)
    want = [np.mean([np.mean([j for i in draw for j in o[(o.video == videos[i]) & (o.anno_set == s)].J])
                     for s in (0, 1)]) for draw in idx]
    np.testing.assert_allclose(stats[("litelvlm", 81)]["J"].replicates(idx), want, rtol=1e-12)


def test_plots_draw_intervals_claims_and_paired_differences():
    from analysis.common.grounding.grounding_scoring import summarize
    from analysis.common.presentation.stat_plots import plot_claims_table, plot_paired_differences
    from analysis.grounding.plots import plot_iou_vs_budget

    rows = _rows()
    stats = gs.metric_stats(rows, "image")
    summary = acc.with_intervals(summarize(rows), stats, ["ciou"], 100, 0)
    _, ax = plot_iou_vs_budget(summary, "ciou")
    bars = [c for c in ax.collections if c.get_segments()]
    assert sum(len(c.get_segments()) for c in bars) == 3   # fastv, litelvlm, random at K = 64
    assert len(ax.patches) == 1                            # the unpruned model's band
    _, ax = plot_iou_vs_budget(summarize(rows), "ciou")    # a folder written before the intervals
    assert not ax.collections and not ax.patches
    _, ax = plot_claims_table(acc.claims_table(stats, ["ciou"], 100, 0, "random"))
    texts = [c.get_text().get_text() for c in ax.tables[0].get_celld().values()]
    assert "not judged" in texts and any("[" in t and "%" in t for t in texts)
    comparisons = acc.comparisons_table(stats, ["ciou"], 100, 0, "image")
    _, ax = plot_paired_differences(comparisons, "ciou", "none")
    assert {ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")} == \
        {"litelvlm", "fastv", "random"}


def test_a_claim_on_one_unit_says_there_is_no_interval():
    rows = _rows(images=1)   # one image: three sentences, one resampled unit
    got = acc.claims_table(gs.metric_stats(rows, "image"), ["ciou"], 100, 0, "real")
    assert list(got.note) == [acc.no_interval(1)] * 2
    assert acc.no_interval(1) == "no interval (n = 1, fewer than the paired test's 6)"
    assert (got.lo.isna().all() and got.hi.isna().all() and got.interval_clears.isna().all()
            and got.mc.isna().all())
    assert set(got.verdict) <= {"MET", "MISSED"}
    from analysis.common.presentation.stat_plots import plot_claims_table

    _, ax = plot_claims_table(got)
    texts = [c.get_text().get_text() for c in ax.tables[0].get_celld().values()]
    assert any(t.endswith("[no interval (n = 1)]") for t in texts)


def test_the_paired_figure_fills_where_the_adjusted_test_marks_and_says_its_bars_are_unadjusted():
    from analysis.common.presentation.stat_plots import plot_paired_differences

    table = pd.DataFrame({"metric": "ciou", "reference": "none", "method": "fastv", "budget": [64, 144, 256],
                          "difference": [-0.05, -0.02, -0.01], "difference_lo": [-0.08, -0.04, -0.03],
                          "difference_hi": [-0.02, -0.001, 0.01], "p": [0.01, 0.03, 0.4],
                          "p_adjusted": [0.02, 0.06, 0.4], "family_size": 2, "unit": "image"})
    _, ax = plot_paired_differences(table, "ciou", "none")
    hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    # K = 144: its unadjusted bar leaves 0, its adjusted p does not mark it: hollow
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == pytest.approx([144, 256])
    assert "unadjusted 95% intervals" in ax.get_title() and "family of 2" in ax.get_title()


def test_a_family_hit_rate_gets_the_clopper_pearson_interval_over_images():
    from analysis.common.grounding.grounding_scoring import summarize
    from analysis.common.stats import proportion

    rows = _rows(images=8)
    rng = np.random.default_rng(2)
    rows = rows.assign(unipixel_inter=rows.intersection, unipixel_union=rows.union, unipixel_iou=rows.iou,
                       unipixel_hit=(rng.random(len(rows)) < 0.7).astype(int))
    stats = gs.metric_stats(rows, "image")
    summary = summarize(rows)
    for m in ("unipixel_ciou", "unipixel_giou", "unipixel_box_acc"):
        summary[m] = [stats[(a, int(b))][m].value() for a, b in zip(summary.method, summary.budget)]
    got = acc.with_intervals(summary, stats, list(gs.metrics_of(rows.columns)), 200, 0, "image")
    for _, row in got.iterrows():
        stat = stats[(row.method, int(row.budget))]["unipixel_box_acc"]
        assert stat.n_units == 8 and stat.den.sum() == 24   # 8 images of 3 expressions each
        want = proportion.hit_rate_interval(stat)
        assert (row.unipixel_box_acc, row.unipixel_box_acc_lo, row.unipixel_box_acc_hi,
                row.unipixel_box_acc_mc) == want and want[3] == 0.0
        assert "box_acc" not in row.heavy_tails and row.unit == "image" and row.units == 8
    # the point estimates stay the summary's
    assert got[list(summary.columns)].equals(summary)


@pytest.mark.parametrize("values", [(0.0670, 0.0672), (0.95, 0.9999), (0.2, 0.8)],
                         ids=["flat", "near-one", "wide"])
def test_an_accuracy_axis_spans_at_least_a_tenth_of_the_metric(values):
    """A J&F axis spanning 0.0670-0.0672 made +0.0002 look steep: every accuracy plot's axis spans at least
    MIN_METRIC_SPAN of the metric's 0-1 range, holds the data, and stays within [0, 1]."""
    import matplotlib.pyplot as plt

    from analysis.common.presentation.stat_plots import MIN_METRIC_SPAN
    from analysis.grounding.plots import plot_iou_vs_budget
    from analysis.video.plots import VideoLabels, plot_jf_vs_budget

    rows = pd.DataFrame({"method": ["litelvlm", "litelvlm", "none"], "budget": [64, 144, 576],
                         "ciou": [values[0], values[1], values[1]], "J&F": [values[0], values[1], values[1]]})
    for fig, ax in (plot_iou_vs_budget(rows, "ciou"),
                    plot_jf_vs_budget(rows, "J&F", labels=VideoLabels(name="VideoGLaMM"))):
        lo, hi = ax.get_ylim()
        assert hi - lo >= MIN_METRIC_SPAN - 1e-12, (lo, hi)
        assert 0 <= lo <= min(values) <= max(values) <= hi <= 1, (lo, hi)
        plt.close(fig)
