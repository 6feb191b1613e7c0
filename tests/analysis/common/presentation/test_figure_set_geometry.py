"""Figures a reviewer accepts, checked with matplotlib's own geometry (``tests/figure_checks.py``): every
registered figure set, drawn by the tree route from the run folders of ``test_registry_labels`` (every figure
set, each in the families its cases name), and the cases of issue #67 drawn from small tables here: no legend
over data, no text past the canvas or over another text, integer ticks on an integer axis, no path of the
machine, no interval at n < 3 (the figure says n), no figure titled by a quantity the run did not vary, and
the importance study's own question (reversed CLIP ranks and each method's score against attention and captum
saliency) drawn whenever a run holds saliency."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from analysis.common.presentation import figure_set as figure_set_module  # noqa: E402
from analysis.common.presentation import style  # noqa: E402
from analysis.common.presentation.style import budget_axis  # noqa: E402
from analysis.figures import registry  # noqa: E402
from analysis.figures.tree import draw_tree  # noqa: E402
from litelvlm.cli import main  # noqa: E402
from litelvlm.methods import TABLE  # noqa: E402
from litelvlm.registry.families import family_names  # noqa: E402
from tests.analysis.figures.test_registry_intervals import NO_INTERVALS  # noqa: E402
from tests.analysis.figures.test_registry_labels import (  # noqa: E402
    CASES,
    Case,
    _draw,
    _params,
    all_texts,
    drawn,
    retention_run,
)
from tests.analysis.figures.test_tree import _build, _clip_runs, _default_pairs, tiny_model  # noqa: E402
from tests.figure_checks import (  # noqa: E402
    drawn_intervals,
    fractional_integer_ticks,
    legend_colours,
    legends_over_data,
    machine_paths,
    overlapping_texts,
    reviewer_flaws,
    says_n,
    unreadable_texts,
    unvaried_axes,
)


def _flaws(figs: dict) -> dict:
    """{figure name: its flaws}, only the figures with some."""
    found = {}
    for name, fig in figs.items():
        flaws = {k: v for k, v in reviewer_flaws(fig).items() if v}
        if flaws:
            found[name] = flaws
    return found


@pytest.mark.parametrize("case", list(_params()))
def test_every_figure_set_passes_a_reviewers_checks(case, tmp_path_factory):
    try:
        figs, _ = drawn(case, tmp_path_factory)
        assert _flaws(figs) == {}
        if case.figure_set in NO_INTERVALS:   # a figure set declared to draw none draws none
            assert {name: drawn_intervals(fig) for name, fig in figs.items() if drawn_intervals(fig)} == {}
        # one colour per method across every figure of the set, the one its style gives
        seen: dict = {}
        for fig in figs.values():
            for label, colours in legend_colours(fig).items():
                method = re.split(r" \(| vs |'s own score| · ", label)[0].removeprefix("method:")
                if method in TABLE:
                    seen.setdefault(method, set()).update(colours)
        assert {m: c for m, c in seen.items() if len(c) > 1} == {}
        assert all(c == {to_hex(style.method_style(m)["color"])} for m, c in seen.items()), seen
    finally:
        plt.close("all")


def test_the_cases_cover_every_figure_set_in_the_default_suite():
    assert {c.figure_set for c in CASES if not c.slow} == set(registry.FIGURE_SETS)


# --- importance: the mission's figure -----------------------------------------------------------------------

SIGNALS = ("clip_rev_sim", "clip_topsim", "method:fastv", "method:vispruner")


def importance_with_saliency(n_images: int, saliency: bool = True):
    """An importance run of four LLM layers, attention of three query sets and (``saliency``) captum's
    saliency, with the reversed CLIP ranks and two methods' own scores, each over ``n_images`` images."""
    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        rows = []
        keys = [("attention", q, la) for q in ("seg", "last", "text") for la in range(4)]
        keys += [("saliency", "", -1)] if saliency else []
        for clip in SIGNALS:
            for sig, q, la in keys:
                m = float(rng.uniform(-0.3, 0.3))
                stats = {f"{x}_{s}": v for x in ("spearman", "kendall", "pearson")
                         for s, v in (("mean", m), ("lo", m - 0.1), ("hi", m + 0.1))}
                stats.update({f"jaccard_{k}_{s}": 0.2 for k in (8, 16) for s in ("mean", "lo", "hi")})
                rows.append({"clip_signal": clip, "llm_signal": sig, "query": q, "layer": la,
                             "area_bin": "all", "n_sentences": 2 * n_images, "n_images": n_images, **stats})
        pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
        pd.DataFrame(rows).to_parquet(folder / "importance.parquet")
        cfg = {"model": "tiny-random:0", "num_visual_tokens": 576,
               "identity": {"study": "importance", "family": "glamm", "model": "tiny-random:0",
                            "weights": "random"}}
        (folder / "config.json").write_text(json.dumps(cfg))
    return build


def _mission(figs: dict):
    found = [fig for name, fig in figs.items() if name.endswith("_mission_spearman")]
    return found[0] if found else None


def test_the_mission_figure_draws_ranks_and_scores_against_attention_and_saliency(tmp_path, monkeypatch):
    figs = _draw(Case("importance", "saliency", importance_with_saliency(4)), tmp_path, monkeypatch)
    try:
        fig = _mission(figs)
        assert fig is not None, list(figs)
        attention, gradients = [ax for ax in fig.axes if ax.get_visible()][:2]
        assert "attention" in attention.get_title() and "saliency" in gradients.get_title()
        labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        assert labels == ["reversed CLIP ranks (−s, LiteLVLM)", "fastv's own score", "vispruner's own score",
                          "ringed: by construction: the method ranks by this layer's attention"]   # FastV's
        summary = pd.read_csv(tmp_path / "runs" / "saliency" / "summary.csv")
        rev = summary[(summary["clip_signal"] == "clip_rev_sim") & (summary["llm_signal"] == "attention")
                      & (summary["query"] == "seg")].sort_values("layer")
        np.testing.assert_allclose(attention.get_lines()[0].get_ydata(), rev["spearman_mean"])
        assert list(attention.get_lines()[0].get_xdata()) == [0, 1, 2, 3]
        sal = summary[(summary["llm_signal"] == "saliency")].set_index("clip_signal")["spearman_mean"]
        shown = sorted(float(ln.get_ydata()[0]) for ln in gradients.get_lines()
                       if len(ln.get_ydata()) == 1 and ln.get_marker() != "_")   # the points, not the caps
        np.testing.assert_allclose(shown, sorted(sal[["clip_rev_sim", "method:fastv", "method:vispruner"]]))
        assert drawn_intervals(fig) >= 6            # a band per line, a bar per saliency point
        assert _flaws(figs) == {}
    finally:
        plt.close("all")


def test_at_two_images_no_interval_is_drawn_and_the_figure_says_n(tmp_path, monkeypatch):
    figs = _draw(Case("importance", "two", importance_with_saliency(2)), tmp_path, monkeypatch)
    try:
        for name in ("mission_spearman", "by_layer_spearman"):
            fig = next(f for n, f in figs.items() if n.endswith(name))
            assert drawn_intervals(fig) == 0, name
            assert any("n = 2" in t for t in says_n(fig)), name
        assert _flaws(figs) == {}
    finally:
        plt.close("all")


def test_no_mission_figure_without_saliency(tmp_path, monkeypatch):
    figs = _draw(Case("importance", "attention", importance_with_saliency(4, saliency=False)), tmp_path,
                 monkeypatch)
    try:
        assert _mission(figs) is None and any(n.endswith("by_layer_spearman") for n in figs)
    finally:
        plt.close("all")


# --- the other flaws of issue #67 ---------------------------------------------------------------------------

def reversal_two_sentences(folder: Path) -> None:
    """A reversal run whose categories hold two sentences each."""
    folder.mkdir(parents=True)
    stat = {"auroc_reversed_mean": 0.6, "auroc_reversed_ci_low": 0.59, "auroc_reversed_ci_high": 0.61,
            "n_sentences": 2}
    rows = [{"breakdown": "all", "group": "all", "layer": la, **stat, "n_sentences": 8} for la in (1, 2)]
    rows += [{"breakdown": b, "group": g, "layer": 2, **stat} for b, gs in
             (("area_bin", ("small", "large")), ("category", ("dog", "cat"))) for g in gs]
    pd.DataFrame(rows).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(rows).to_parquet(folder / "reversal.parquet")
    (folder / "config.json").write_text(json.dumps({
        "model": "tiny336-random", "clip": {"model": "tiny336-random"},
        "args": {"grid": "clip", "space": "clip", "pad_to_square": False},
        "identity": {"study": "reversal", "family": "clip", "model": "tiny336-random", "weights": "random"}}))


def test_reversal_by_category_at_two_sentences_says_n_and_draws_no_bar(tmp_path, monkeypatch):
    figs = _draw(Case("reversal", "two", reversal_two_sentences), tmp_path, monkeypatch)
    try:
        fig = next(f for n, f in figs.items() if n.endswith("by_category"))
        assert drawn_intervals(fig) == 0 and says_n(fig)
        assert drawn_intervals(next(f for n, f in figs.items() if n.endswith("auroc_by_layer"))) == 1  # n = 8
    finally:
        plt.close("all")


def retention_tall(folder: Path) -> None:
    """A retention run of eleven methods at four budgets: a tall grid whose last header is K=32."""
    retention_run("tiny336-random", "clip", (24, 24), (576, 192, 64, 32))(folder)
    table = pd.read_parquet(folder / "retention.parquet")
    more = [table[table["method"] == "random"].assign(method=m) for m in
            ("vispruner", "visionzip", "prumerge", "prumerge+", "tome", "hiprune", "clip_topsim", "divprune",
             "litelvlm-ctx")]
    pd.concat([table, *more], ignore_index=True).to_parquet(folder / "retention.parquet")


def test_the_retention_grids_run_label_stays_clear_of_its_headers(tmp_path, monkeypatch):
    figs = _draw(Case("retention", "tall", retention_tall), tmp_path, monkeypatch)
    try:
        grid = next(f for n, f in figs.items() if "_grid_" in n)
        assert "K=32" in all_texts(grid)
        assert _flaws({"grid": grid}) == {}
    finally:
        plt.close("all")


def test_a_run_of_one_precision_is_not_titled_by_precision(tmp_path_factory):
    case = next(c for c in CASES if c.figure_set == "validate" and not c.slow)
    figs, _ = drawn(case, tmp_path_factory)
    try:
        for name, fig in figs.items():
            assert not any("by precision" in t for t in all_texts(fig)), name
            memory = [ax for ax in fig.axes if "memory" in ax.get_ylabel() or "activation" in ax.get_ylabel()]
            assert all(ax.get_ylim()[0] == 0 for ax in memory), name   # memory drawn from zero
    finally:
        plt.close("all")


def test_the_default_cases_cover_every_registered_family():
    """Each registered model family (and the CLIP studies' runs) is drawn by some default case."""
    covered = {c.model_family for c in CASES if not c.slow}
    assert set(family_names()) <= covered


# --- the slow variant: real runs of every registered family ------------------------------------------------

@pytest.mark.slow
def test_real_runs_of_every_family_pass_a_reviewers_checks(tmp_path, shared_data, monkeypatch):
    """Every registered family's grounding (or video) run, the CLIP studies, the reversal in a merged grid's
    LLM space (``test_tree``'s tree) and an importance run with saliency and two methods' scores, drawn by
    ``litelvlm figures`` with every figure checked."""
    coco = shared_data / "coco128_refer"
    root = tmp_path / "runs"
    assert all(rc == 0 for rc in _build(root, coco, _default_pairs()).values())
    _clip_runs(root, coco)
    assert main(["importance", "--model", tiny_model("glamm"), "--refer-dir", str(coco),
                 "--limit-images", "3", "--max-sentences", "1", "--signals", "attention,saliency",
                 "--method-signals", "vispruner,fastv", "--threads", "1",
                 "--out", str(root / "glamm" / "importance")]) == 0
    drawn: dict = {}

    def capture(fig, out_dir, name, **_):
        drawn[name] = fig
        return [Path(out_dir) / f"{name}.png"]

    monkeypatch.setattr(style, "save_figure", capture)
    monkeypatch.setattr(figure_set_module, "same_png", lambda fig, png: False)
    every = list(registry.FIGURE_SETS.values())
    draw_tree(root, tmp_path / "out", every, every)
    try:
        assert any(n.endswith("_mission_spearman") for n in drawn), sorted(drawn)
        assert _flaws(drawn) == {}
    finally:
        plt.close("all")


def test_each_check_finds_the_flaw_it_names():
    """The checks on figures made with each flaw (so that a figure passing them is not passing by default)."""
    try:
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(range(10), [0.5] * 10, label="flat line")
        ax.legend(loc="center")
        assert legends_over_data(fig) == ["flat line"]
        ax.get_legend().remove()
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
        assert legends_over_data(fig) == []
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [0, 1, 0])
        ax.set_xlabel("LLM layer")
        ax.set_xticks([0, 0.5, 1, 1.5, 2])
        assert fractional_integer_ticks(fig) == ["LLM layer: 0.5", "LLM layer: 1.5"]
        ax.set_title("AUROC, model /tmp/run/weights")
        assert machine_paths(fig) == ["AUROC, model /tmp/run/weights"]
        ax.text(0.5, 1.0, "a header", transform=ax.transAxes, ha="center", va="bottom", fontsize=10)
        assert {"AUROC, model /tmp/run/weights", "a header"} in [set(p) for p in overlapping_texts(fig)]
        fig.set_size_inches(20, 2)
        assert "a header" in unreadable_texts(fig)
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([64], [0.3], marker="o")
        budget_axis(ax, [64])
        assert unvaried_axes(fig) == ["visual tokens kept (K)"]
    finally:
        plt.close("all")


def test_the_overlap_check_sees_every_kind_of_text():
    """Tick labels over each other (level and slanted), an axis label over a neighbour's tick labels, and a
    corner label over the title are each found (the cases of the issue: crowded ticks, the positions figure's
    two axis labels, the run label over a title)."""
    try:
        fig, ax = plt.subplots(figsize=(1.5, 1.5))
        ax.set_xticks(range(12), [f"method {i}" for i in range(12)])
        assert ("method 0", "method 1") in overlapping_texts(fig)
        # slanted labels: crowded ones cross, spaced ones do not (their level boxes would)
        ax.set_xticks(range(12), [f"method {i}" for i in range(12)], rotation=45, ha="right")
        assert ("method 0", "method 1") in overlapping_texts(fig)
        fig.set_size_inches(8, 1.5)
        assert overlapping_texts(fig) == []
        fig, (a, b) = plt.subplots(1, 2, figsize=(3, 1.5), gridspec_kw={"wspace": 0})
        b.set_ylabel("mask IoU with the unpruned model", fontsize=9)
        a.set_yticks([0.0, 0.5, 1.0], ["0.0", "0.5", "1.0"])
        b.set_yticks([0.0, 0.5, 1.0], ["zero", "half", "one"])
        assert any("mask IoU with the unpruned model" in pair for pair in overlapping_texts(fig))
        fig = plt.figure(figsize=(3, 2))
        title = "a long title that reaches the figure's right corner"
        fig.suptitle(title, x=0.6, fontsize=9)
        fig.text(0.99, 0.98, "glamm/tiny-random:0", ha="right", va="top", fontsize=9)
        assert {title, "glamm/tiny-random:0"} in [set(p) for p in overlapping_texts(fig)]
    finally:
        plt.close("all")
