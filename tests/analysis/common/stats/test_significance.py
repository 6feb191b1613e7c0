"""One criterion of significance per run (:mod:`analysis.common.stats.significance`): the family fixed by the
protocol (one comparison's metrics, whatever else ran), its size beside every adjusted p, and over many seeded
random runs no artefact (``comparisons.csv``, ``claims.csv``, the leaderboard columns, the table's marks and
p cells, the paired and claims figures, the screen's headline) that marks a comparison another does not."""

from __future__ import annotations

import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from analysis.common.grounding.grounding_scoring import summarize
from analysis.common.presentation.screen import methods_headline
from analysis.common.presentation.stat_plots import plot_claims_table, plot_paired_differences
from analysis.common.presentation.style import method_style
from analysis.common.runs.run_tree import Run
from analysis.common.stats import significance as sig
from analysis.common.stats.bootstrap import holm
from analysis.grounding import statistics as gs
from analysis.tables.accuracy import GROUNDING, accuracy_table

matplotlib.use("Agg")

METRICS = {"ciou": "cIoU", "giou": "gIoU"}
REFERENCES = ("none", "litelvlm", "random", "downsample")


def _run_rows(seed: int, methods: dict[str, float], budgets: tuple[int, ...], images: int) -> pd.DataFrame:
    """Grounding rows of ``images`` images (2 sentences each): each method keeps a share of the unpruned
    model's intersection, with noise drawn per row."""
    rng = np.random.default_rng(seed)
    union = rng.integers(300, 3000, size=2 * images)
    base = np.floor(union * rng.uniform(0.1, 0.9, size=len(union)))
    out = []
    for method, share in {"none": 1.0, **methods}.items():
        for budget in ((576,) if method == "none" else budgets):
            noise = rng.normal(1.0, 0.04, size=len(union))
            inter = np.minimum(np.floor(base * share * noise), union)
            out += [{"method": method, "budget": budget, "image_id": 7 + k // 2, "ref_id": k, "ann_id": k,
                     "sent_id": 900 + k, "turn": k % 2, "intersection": int(inter[k]), "union": int(union[k]),
                     "iou": inter[k] / (union[k] + 1e-5)} for k in range(len(union))]
    return pd.DataFrame(out)


def _statistics(rows: pd.DataFrame, tmp_path, weights: str = "real") -> dict:
    """What ``eval-grounding`` writes from ``rows``: summary.csv (with the leaderboard's columns),
    comparisons.csv and claims.csv, in a run folder."""
    folder = tmp_path / "run"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"n_boot": 200, "seed": 3, "model": "glamm-7b" if weights == "real" else "tiny-random:0"}
    summary = gs.add_statistics(folder, summarize(rows), rows, config)
    summary.to_csv(folder / "summary.csv", index=False)
    return {"folder": folder, "config": config, "summary": summary,
            "comparisons": pd.read_csv(folder / "comparisons.csv"),
            "claims": pd.read_csv(folder / "claims.csv")}


def _truth(comparisons: pd.DataFrame) -> dict[tuple, bool]:
    """{(metric, method, budget, reference): significant} by the one criterion."""
    return {(r.metric, r.method, int(r.budget), r.reference): sig.significant(r.p_adjusted)
            for r in comparisons.itertuples()}


def test_the_family_is_one_comparisons_metrics_whatever_else_ran(tmp_path):
    """The same comparison on the same units has the same adjusted p in a run of two methods and in one of
    many; its family is its metrics (2: cIoU and gIoU)."""
    small = _statistics(_run_rows(5, {"litelvlm": 0.95}, (64,), 8), tmp_path / "a")["comparisons"]
    rows = _run_rows(5, {"litelvlm": 0.95}, (64,), 8)
    more = {m: s for m, s in zip(["fastv", "vispruner", "divprune", "random", "downsample", "dart"],
                                 [0.9, 0.97, 0.99, 0.8, 0.85, 0.93])}
    others = _run_rows(6, more, (192, 64, 16), 8).query("method != 'none'")
    large = _statistics(pd.concat([rows, others], ignore_index=True), tmp_path / "b")["comparisons"]
    assert len(large) > 10 * len(small)

    def pick(t):
        return t[(t.method == "litelvlm") & (t.reference == "none") & (t.budget == 64)].set_index("metric")

    a, b = pick(small), pick(large)
    for metric in ("ciou", "giou"):
        assert a.loc[metric, "p_adjusted"] == b.loc[metric, "p_adjusted"]
        assert a.loc[metric, "family_size"] == b.loc[metric, "family_size"] == 2
    assert (large["family_size"] == 2).all() and (large["correction"] == sig.CORRECTION).all()
    for _, family in large.groupby(["method", "budget", "reference"]):
        np.testing.assert_allclose(family["p_adjusted"], holm(family["p"].to_numpy()))


def test_p_text_and_significance_of_missing_values():
    assert sig.p_text(0.0312, 2) == "Holm p 0.031, family of 2"
    assert sig.p_text(math.nan, 2) == "" and sig.p_text(None, None) == ""
    assert not sig.significant(math.nan) and not sig.significant(None) and not sig.significant(sig.ALPHA)
    assert sig.significant(0.049)


def _table_marks(table, truth) -> None:
    """The table's metric cells carry † / ‡ exactly where the criterion marks the comparison with none /
    LiteLVLM; its leaderboard p cells are the adjusted p with the family size."""
    shown, data = table.shown, table.data
    for (_, cells), (_, numbers) in zip(shown.iterrows(), data.iterrows()):
        method, budget = numbers["method"], int(numbers["budget"])
        for metric, name in GROUNDING.metrics:
            cell = cells[name]
            for mark, ref in ((sig.MARK_NONE, "none"), (sig.MARK_LITELVLM, "litelvlm")):
                want = truth.get((metric, method, budget, ref), False)
                assert (mark in cell) == want, (method, budget, metric, ref, cell)
    assert any("unadjusted" in c for c in shown.columns if "% of none" in c)


def _board_cells(table, comparisons) -> int:
    """The leaderboard's p cells are the adjusted p with its family; returns how many were checked."""
    checked = 0
    lead = GROUNDING.lead_metric
    for (_, cells), (_, numbers) in zip(table.shown.iterrows(), table.data.iterrows()):
        for ref in ("random", "downsample"):
            column = f"{lead[1]} vs {ref}"
            if column not in cells:
                continue
            hit = comparisons[(comparisons.metric == lead[0]) & (comparisons.method == numbers["method"])
                              & (comparisons.budget == numbers["budget"]) & (comparisons.reference == ref)]
            if len(hit):
                want = sig.p_text(hit.p_adjusted.iloc[0], hit.family_size.iloc[0])
                assert want and want in cells[column], (cells[column], want)
                checked += 1
    return checked


def _paired_figure(comparisons, truth) -> None:
    for metric in METRICS:
        for ref in ("none", "litelvlm"):
            _, ax = plot_paired_differences(comparisons, metric, ref)
            assert "unadjusted" in ax.get_title() and "Holm" in ax.get_title()
            d = comparisons[(comparisons.metric == metric) & (comparisons.reference == ref)]
            for method, g in d.groupby("method"):
                colour, marker = method_style(method)["color"], method_style(method)["marker"]
                hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"
                          and matplotlib.colors.same_color(ln.get_markeredgecolor(), colour)
                          and ln.get_marker() == marker]   # two methods may share a colour, not a marker
                n_hollow = sum(len(ln.get_xdata()) for ln in hollow)
                assert n_hollow == sum(not truth[(metric, method, int(b), ref)] for b in g.budget), method
            matplotlib.pyplot.close(ax.figure)


def _claims(claims, comparisons) -> None:
    index = comparisons.set_index(["metric", "budget", "method", "reference"])
    assert claims.p_adjusted.notna().any()   # every seeded run holds none and LiteLVLM: a retention claim
    for r in claims.itertuples():
        if not isinstance(r.p_adjusted, float) or math.isnan(r.p_adjusted):
            continue
        pair = (r.metric, r.budget, r.method, "none") if r.claim == "retains_90pct" else \
            (r.metric, r.budget, r.compared_with, "litelvlm")
        assert index.loc[pair, "p_adjusted"] == r.p_adjusted
        assert index.loc[pair, "family_size"] == r.family_size
    _, ax = plot_claims_table(claims)
    texts = [c.get_text().get_text() for c in ax.tables[0].get_celld().values()]
    for r in claims.itertuples():
        if isinstance(r.p_adjusted, float) and math.isfinite(r.p_adjusted):
            assert sig.p_text(r.p_adjusted, r.family_size) in texts
    matplotlib.pyplot.close(ax.figure)


def _screen(summary, comparisons, truth) -> None:
    lines = methods_headline(summary, METRICS, comparisons=comparisons)
    said = "\n".join(lines)
    if comparisons["units"].max() < 6:   # the paired test cannot reach 0.05: no mark, and the line says so
        assert "no difference can be marked" in said and "Holm" not in said
    else:
        assert "Holm" in said and "family of 2" in said
    for line in lines:
        budget = re.match(r"\s+K=(\d+): ", line)
        if not budget:
            continue
        for chunk in line[budget.end():].split("; "):
            method = chunk.split(" ", 1)[0]
            for cell in chunk.split(" / "):
                metric = next(m for m, label in METRICS.items() if f"{label} " in cell)
                for mark, ref in ((sig.MARK_NONE, "none"), (sig.MARK_LITELVLM, "litelvlm")):
                    want = truth.get((metric, method, int(budget.group(1)), ref), False)
                    assert (mark in cell) == want, (line, cell)


def _seeded_run(seed: int) -> pd.DataFrame:
    """The rows of seeded random run ``seed``: some of six methods, one or two budgets, 3 to 20 images."""
    rng = np.random.default_rng(100 + seed)
    pool = ["litelvlm", "fastv", "vispruner", "divprune", "random", "downsample"]
    methods = {m: float(rng.choice([1.0, 0.98, 0.95, 0.9, 0.8])) for m in pool if rng.random() < 0.7}
    methods.setdefault("litelvlm", 0.95)
    budgets = tuple(int(b) for b in sorted(rng.choice([192, 64, 16], size=int(rng.integers(1, 3)),
                                                      replace=False), reverse=True))
    return _run_rows(seed, methods, budgets, int(rng.integers(3, 21)))


SEEDS = range(8)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> dict[int, dict]:
    """The statistics of every seeded random run, computed once for the tests below."""
    return {seed: _statistics(_seeded_run(seed), tmp_path_factory.mktemp(f"seed{seed}")) for seed in SEEDS}


@pytest.mark.parametrize("seed", SEEDS)
def test_every_artefact_of_a_run_marks_the_same_comparisons(seed, seeded, tmp_path):
    got = seeded[seed]
    comparisons, truth = got["comparisons"], _truth(got["comparisons"])
    identity = {"study": "eval-grounding", "family": "glamm", "model": "glamm-7b", "weights": "real"}
    table = accuracy_table(Run(got["folder"], got["config"], identity), tmp_path, GROUNDING, "grounding")
    _table_marks(table, truth)
    references = {"random", "downsample"} & set(got["summary"]["method"])
    assert (_board_cells(table, comparisons) > 0) == bool(references)
    few = comparisons["units"].max() < 6   # the paired test cannot reach 0.05: the caption says no mark
    assert ("no difference can be marked" if few else "family of 2") in table.caption
    assert "unadjusted" in table.caption
    _paired_figure(comparisons, truth)
    _claims(got["claims"], comparisons)
    _screen(got["summary"], comparisons, truth)


def test_the_sweep_meets_both_answers(seeded):
    """The seeded runs mark some comparisons and leave others unmarked (so the test above sees both)."""
    flags = [sig.significant(p) for got in seeded.values() for p in got["comparisons"].p_adjusted]
    assert sum(flags) > 5 and len(flags) - sum(flags) > 5
    assert any({"random", "downsample"} & set(got["summary"]["method"]) for got in seeded.values())
