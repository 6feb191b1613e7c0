"""Growing a run: a larger --limit (or more methods and budgets) reuses the finished parts and computes
only what is new; the grown results equal, byte for byte, a fresh run with the larger options.
Truly incompatible options (seed, model, dtype) are still refused, naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

import analysis.grounding.compute as grounding
import analysis.importance.compute as importance
from litelvlm.budget import Budget
from litelvlm.cli import main
from tests.litelvlm.runs.test_run_folder import study_args

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

TABLES = {
    "eval-grounding": ["grounding.parquet", "summary.csv", "skipped.csv", "summary.txt"],
    "importance": ["importance.parquet", "summary.csv", "token_scores.parquet"],
    "reversal": ["reversal.parquet", "summary.csv"],
    "sink": ["sink.parquet", "summary.csv", "ablation.parquet", "ablation_summary.csv"],
    "retention": ["retention.parquet", "retention_scores.parquet"],
}


def with_limit(args: list[str], n: int) -> list[str]:
    i = args.index("--limit")
    return [*args[:i + 1], str(n), *args[i + 2:]]


def assert_same_tables(study: str, a: Path, b: Path) -> None:
    for f in TABLES[study]:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_grounding_grows_images_methods_and_budgets(coco128, tmp_path, monkeypatch):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    small = ["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--limit", "1", "--chunk", "1",
             "--methods", "none", "--budgets", "16"]
    big = [*with_limit(small, 2)[:-4], "--methods", "none,litelvlm", "--budgets", "16,8"]
    assert main(small) == 0
    fresh_small = {f: (out / f).read_bytes() for f in TABLES["eval-grounding"]}   # a fresh small run's
    real, calls = grounding.evaluate_images, []
    monkeypatch.setattr(grounding, "evaluate_images",
                        lambda pipe, a, items, pairs, *r: calls.extend((recs[0].image_id, list(pairs))
                                                                       for recs, *_ in items)
                        or real(pipe, a, items, pairs, *r))
    assert main(big) == 0
    # the first image only gets the new pairs; the new image gets every pair
    assert calls == [(9, [("litelvlm", Budget(16)), ("litelvlm", Budget(8))]),
                     (34, [("none", Budget(576)), ("litelvlm", Budget(16)), ("litelvlm", Budget(8))])]
    monkeypatch.setattr(grounding, "evaluate_images", real)
    assert main([*big[:big.index("--out") + 1], str(fresh), *big[big.index("--out") + 2:]]) == 0
    assert_same_tables("eval-grounding", out, fresh)
    # a smaller selection reuses the parts too, and equals a fresh small run
    calls.clear()
    assert main(small) == 0
    assert {f: (out / f).read_bytes() for f in TABLES["eval-grounding"]} == fresh_small


def test_importance_grows_its_limit(coco128, tmp_path, monkeypatch, finished_runs):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    args = study_args("importance", coco128, out)
    finished_runs.copy(lambda o: with_limit(study_args("importance", coco128, o), 1), out)   # the smaller run
    real, seen = importance.evaluate_image, []
    monkeypatch.setattr(importance, "evaluate_image",
                        lambda pipe, a, recs, *r: seen.append(recs[0].image_id) or real(pipe, a, recs, *r))
    assert main(args) == 0
    assert seen == [34]                      # image 9 was finished by the smaller run
    finished_runs.copy(lambda o: study_args("importance", coco128, o), fresh)   # a fresh run's results
    assert_same_tables("importance", out, fresh)


@pytest.mark.parametrize("study", ["reversal", "sink", "retention"])
def test_rerun_with_a_larger_limit_equals_a_fresh_run(study, coco128, tmp_path, finished_runs):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    args = study_args(study, coco128, out)
    n = int(args[args.index("--limit") + 1])
    assert main(with_limit(args, max(1, n // 2))) == 0
    assert main(args) == 0
    finished_runs.copy(lambda o: study_args(study, coco128, o), fresh)   # a fresh run's results
    assert_same_tables(study, out, fresh)


@pytest.mark.parametrize("study,option",
                         [("eval-grounding", ["--seed", "1"]), ("importance", ["--seed", "1"]),
                                          ("eval-grounding", ["--max-sentences", "1"])])
def test_incompatible_options_are_refused_naming_them(study, option, coco128, tmp_path, capsys,
                                                      finished_runs):
    out = tmp_path / "out"
    args = with_limit(study_args(study, coco128, out), 1)
    finished_runs.copy(lambda o: with_limit(study_args(study, coco128, o), 1), out)   # a finished run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main([*args, *option]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and option[0] in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
