"""The leaderboard's columns end to end on ``eval-grounding`` (tiny random GLaMM, two COCO-128 images) and
in ``litelvlm tables``: present with sane values where their inputs exist (loyalty needs ``none``, the
differences ``random``, the pruning time ``--time-pruning``), absent otherwise, and a table of a run without
them as before."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest

from analysis.common.stats import leaderboard as lb
from litelvlm.cli import main
from tests.fixtures.cli import run_grounding

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_data):
    """(the run folder, its summary.csv indexed by method) of the command the leaderboard describes."""
    out = tmp_path_factory.mktemp("leaderboard") / "run"
    assert run_grounding(shared_data / "coco128_refer", out, "--methods", "none,litelvlm,random,fastv",
                         "--budgets", 64, "--limit-images", 2, "--n-boot", 20) == 0
    return out, pd.read_csv(out / "summary.csv").set_index("method")


def test_the_columns_hold_sane_values(run):
    out, s = run
    assert s.loc["none", "loyalty"] == 1.0
    absent = s["loyalty_lo"].isna() & s["loyalty_hi"].isna()   # too few images for an interval: none
    assert s["loyalty"].between(0, 1).all() and ((s["loyalty_lo"] <= s["loyalty_hi"]) | absent).all()
    assert s.loc["fastv", "layer_avg_tokens"] == (576 * 2 + 64 * 2) / 4   # the tiny LLM: 4 layers, K = 2
    assert 64 < s.loc["fastv", "layer_avg_tokens"] < 576 and s.loc["litelvlm", "layer_avg_tokens"] == 64
    assert (s["share_of_unpruned_ciou"] > 0).all() and (s["share_of_unpruned_giou"] > 0).all()
    assert s.loc["none", "share_of_unpruned_ciou"] == 1.0
    assert s.loc["litelvlm", "share_of_unpruned_ciou"] == pytest.approx(s.loc["litelvlm", "ciou"]
                                                                        / s.loc["none", "ciou"])
    assert s.loc["fastv", "reads_attention"] and not s.loc["litelvlm", "reads_attention"]
    assert 0 <= s.loc["litelvlm", "p_adjusted_vs_random_ciou"] <= 1 and math.isfinite(s.loc["litelvlm",
                                                                                   "diff_vs_random_ciou"])
    assert math.isnan(s.loc["random", "diff_vs_random_ciou"]) and "prune_ms" not in s   # not asked for
    assert not any(c.startswith("stage_") for c in s.columns)   # --stage-costs: not asked for
    comparisons = pd.read_csv(out / "comparisons.csv")
    vs = comparisons[(comparisons.method == "litelvlm") & (comparisons.reference == "random")
                     & (comparisons.metric == "ciou")].iloc[0]
    assert (vs.difference, vs.p_adjusted) == (s.loc["litelvlm", "diff_vs_random_ciou"],
                                              s.loc["litelvlm", "p_adjusted_vs_random_ciou"])
    rows = pd.read_parquet(out / "grounding.parquet")
    assert lb.PRED_RLE not in rows and rows.loc[rows.method == "none", "loyalty"].eq(1.0).all()
    assert "leaderboard" in (out / "summary.txt").read_text()
    assert list(s.columns)[-1] == "weights"


def test_tables_prints_them_and_a_run_without_them_gives_its_table_as_before(run, tmp_path, capsys):
    out, _ = run
    capsys.readouterr()
    assert main(["tables", "--results", str(out), "--out", str(tmp_path / "t"), "-v"]) == 0
    printed = capsys.readouterr().out
    header = next(ln for ln in printed.splitlines() if ln.startswith("| Method"))
    for column in ("Loyalty", "Layer-avg tokens", "cIoU vs random", "Reads attention"):
        assert f"| {column} |" in header, header
    assert "Leaderboard columns" in printed and "| fastv | 64 |" in printed
    fastv = next(ln for ln in printed.splitlines() if ln.startswith("| fastv |"))
    assert _cells(fastv)[_cells(header).index("Reads attention")] == "yes"
    # the same run's summary without the leaderboard's columns (an earlier run): the table as it was
    old = tmp_path / "old"
    shutil.copytree(out, old, ignore=shutil.ignore_patterns("parts", ".*"))
    summary = pd.read_csv(old / "summary.csv")
    summary.drop(columns=lb.board_columns(summary.columns)).to_csv(old / "summary.csv", index=False)
    assert main(["tables", "--results", str(old), "--out", str(tmp_path / "t2")]) == 0
    md = next((tmp_path / "t2").glob("grounding_*.md")).read_text()
    assert "Leaderboard" not in md and "| gIoU % of none (unadjusted CI) |\n" in md


def test_without_none_no_loyalty_and_time_pruning_times_the_clip_side_selection(shared_data, tmp_path):
    out = tmp_path / "run"
    assert run_grounding(shared_data / "coco128_refer", out, "--methods", "litelvlm,fastv", "--budgets", 64,
                         "--limit-images", 1, "--n-boot", 10, "--time-pruning") == 0
    s = pd.read_csv(out / "summary.csv").set_index("method")
    assert not any(c.startswith(("loyalty", "share_of_unpruned", "diff_vs", "p_vs")) for c in s.columns)
    assert s.loc["litelvlm", "prune_ms"] > 0 and math.isnan(s.loc["fastv", "prune_ms"])   # inside the LLM
    assert s.loc["fastv", "layer_avg_tokens"] > 64 and s.loc["fastv", "reads_attention"]
