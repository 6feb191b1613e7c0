"""Where a method's savings land (this project's reading of a run's time by stage): each pruned run's
whole-call and LLM speed-ups over the unpruned run, Amdahl's bound on a method that only shortens the LLM,
and the time saved (or added) in each stage, from ``stages.csv``'s frame; the figure that draws them."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.common.measures.amdahl import COLUMNS, amdahl_frame, amdahl_lines  # noqa: E402
from tests.figure_checks import reviewer_flaws  # noqa: E402

#: ms by stage of three runs: the unpruned call (LLM 20 of 100 ms), a method that only shortens the LLM
#: (prefill 20 -> 5, selection +2), a method that prunes in the vision tower as well (vision 30 -> 15)
RUNS = {("none", 576): {"prepare": 5, "vision": 30, "selection": 0, "prefill": 20, "decode": 0, "mask": 40,
                        "other": 5},
        ("fastv", 64): {"prepare": 5, "vision": 30, "selection": 2, "prefill": 5, "decode": 0, "mask": 40,
                        "other": 5},
        ("tower", 64): {"prepare": 5, "vision": 15, "selection": 0, "prefill": 5, "decode": 0, "mask": 40,
                        "other": 5}}


def stages(attn: tuple[str, ...] = ()) -> pd.DataFrame:
    return stages_of(RUNS, attn)


def stages_of(runs: dict, attn: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for kernel in attn or (None,):
        for (method, budget), ms in runs.items():
            total = sum(ms.values())
            for stage, v in [*ms.items(), ("total", total)]:
                rows.append({**({"attn": kernel} if kernel else {}), "method": method, "budget": budget,
                             "stage": stage, "ms": float(v), "share": v / total})
    return pd.DataFrame(rows)


def test_each_pruned_run_against_amdahls_bound():
    table = amdahl_frame(stages())
    assert list(table.columns) == ["method", "budget", *COLUMNS]
    assert list(table["method"]) == ["fastv", "tower"]
    fastv, tower = (table.iloc[i] for i in range(2))
    assert fastv["llm_share_of_base"] == pytest.approx(0.2)
    assert fastv["bound_llm_only"] == pytest.approx(1 / 0.8)             # the LLM's time taken to nothing
    assert fastv["llm_speedup"] == pytest.approx(4.0)
    assert fastv["bound_at_llm_speedup"] == pytest.approx(1 / (0.8 + 0.2 / 4))   # 1.176x
    assert fastv["speedup"] == pytest.approx(100 / 87)                    # selection's 2 ms cost it
    assert fastv["saved_prefill_ms"] == 15 and fastv["saved_selection_ms"] == -2
    assert fastv["saved_vision_ms"] == 0
    assert fastv["saved_outside_llm_ms"] == -2
    # a method saving in the vision tower beats the bound of a method that only shortens the LLM
    assert tower["speedup"] == pytest.approx(100 / 70) and tower["speedup"] > tower["bound_llm_only"]
    assert tower["saved_vision_ms"] == 15 and tower["saved_outside_llm_ms"] == 15


def test_runs_of_several_kernels_each_against_their_own_baseline():
    table = amdahl_frame(stages(("eager", "sdpa")))
    assert list(table["attn"]) == ["eager", "eager", "sdpa", "sdpa"]
    assert table["bound_llm_only"].tolist() == pytest.approx([1.25] * 4)


def test_no_baseline_or_no_llm_time_gives_no_rows():
    assert amdahl_frame(stages()[lambda d: d.method != "none"]).empty
    assert amdahl_frame(pd.DataFrame(columns=["method", "budget", "stage", "ms", "share"])).empty
    flat = stages().assign(ms=lambda d: d.ms.where(~d.stage.isin(["prefill", "decode"]), 0.0))
    table = amdahl_frame(flat)
    assert table["bound_llm_only"].tolist() == [1.0, 1.0] and table["llm_speedup"].isna().all()


def test_the_screen_says_the_bound_with_the_shares():
    lines = amdahl_lines(amdahl_frame(stages()), stages(), "fastv")
    assert lines[0] == ("Amdahl (this project's reading): the LLM is 20% of none's whole call (mask 40%, "
                        "vision 30%, prepare 5%, other 5%): a method that only shortens the LLM makes the "
                        "call at most 1.25x faster")
    assert lines[1] == ("  fastv@64: 1.15x measured; 1.18x if only its LLM (4.00x) had changed; saved "
                        "outside the LLM -2.0 ms (selection -2.0)")
    assert amdahl_lines(amdahl_frame(stages()[lambda d: d.method != "none"]), stages(), "fastv") == []
    # each ratio names the LLM sequence lengths it was measured at, where they are known
    lengths = {("none", 576): 867, ("fastv", 64): 355}
    named = amdahl_lines(amdahl_frame(stages()), stages(), "fastv", lengths=lengths)
    assert "of none's whole call at 867 LLM tokens (" in named[0]
    assert named[1] == lines[1] + " (sequence 867 -> 355 tokens)"


def test_the_figure_draws_the_bound_the_curve_and_every_run():
    from analysis.common.presentation.amdahl_figure import plot_amdahl

    fig = plot_amdahl(amdahl_frame(stages()), "tiny-random:0")
    try:
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("only the LLM" in t for t in labels) and "at most 1.25x" in ax.get_title()
        assert {"fastv@64", "tower@64"} <= {t.get_text() for t in ax.texts}
        assert fig.get_supxlabel().startswith("LLM speed-up")
        assert ax.get_ylabel().startswith("whole-call speed-up")
        assert {k: v for k, v in reviewer_flaws(fig).items() if v} == {}
        assert not math.isnan(ax.get_ylim()[1])
        named = plot_amdahl(amdahl_frame(stages()), "tiny-random:0", lengths={("none", 576): 867,
                                                                                ("fastv", 64): 355})
        assert "fastv@64, 355 tokens" in {t.get_text() for t in named.axes[0].texts}
        assert "(867 tokens)" in named.axes[0].get_title()
        two = plot_amdahl(amdahl_frame(stages(("eager", "sdpa"))), "tiny-random:0")   # a panel per kernel
        titles = [a.get_title().splitlines()[0] for a in two.axes]
        assert titles == ["LLM attention: eager", "LLM attention: sdpa"]
        assert {k: v for k, v in reviewer_flaws(two).items() if v} == {}
    finally:
        plt.close("all")


def test_the_figure_shows_slower_llms_and_keeps_coincident_runs_readable():
    """A run whose LLM got slower (0.8x) lies inside the axes, and runs at one point (a tower method that
    keeps the LLM's sequence, at two budgets) are named without their labels overlapping."""
    from analysis.common.presentation.amdahl_figure import plot_amdahl

    runs = {**RUNS, ("slow", 64): {**RUNS[("none", 576)], "prefill": 25, "selection": 3},
            ("tower", 192): {**RUNS[("none", 576)], "vision": 29.9},
            ("tower", 128): {**RUNS[("none", 576)], "vision": 29.8}}
    frame = amdahl_frame(stages_of(runs))
    fig = plot_amdahl(frame, "tiny-random:0")
    try:
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        xs = [x for line in ax.lines if line.get_marker() not in (None, "None", "")
              for x in line.get_xdata()]
        assert len(xs) == 5 and all(lo < x < hi for x in xs), (lo, hi, xs)
        assert {"slow@64", "tower@192", "tower@128"} <= {t.get_text() for t in ax.texts}
        assert {k: v for k, v in reviewer_flaws(fig).items() if v} == {}
    finally:
        plt.close("all")


def test_the_figure_of_many_runs_names_methods_in_a_legend_without_overlaps():
    """A validate of every method at two budgets (here 24 methods): no label over another or past the canvas,
    each method named once in the legend, and ticks below 1x where LLMs got slower."""
    from analysis.common.presentation.amdahl_figure import plot_amdahl

    runs = {("none", 576): RUNS[("none", 576)]}
    for i in range(24):
        for budget, cut in ((64, 12.0), (16, 15.0)):
            ms = {**RUNS[("none", 576)], "prefill": 20 - cut * (i % 7) / 7 + (40 if i == 3 else 0),
                  "selection": 0.2 * i}
            runs[(f"m{i:02d}", budget)] = ms
    fig = plot_amdahl(amdahl_frame(stages_of(runs)), "tiny-random:0")
    try:
        ax = fig.axes[0]
        names = {t.get_text() for leg in [ax.get_legend()] for t in leg.get_texts()}
        assert {f"m{i:02d}" for i in range(24)} <= names
        assert min(ax.get_xticks()) < 1.0
        assert {k: v for k, v in reviewer_flaws(fig).items() if v} == {}
    finally:
        plt.close("all")
