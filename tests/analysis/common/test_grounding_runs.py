"""A study's runs (analysis.common.grounding_runs): (method, Budget) from the command line to the family's ground,
the range checked once (plan against a fixed N, image_runs against each image's), tables keyed by the column."""

from __future__ import annotations

import logging

import pytest

from analysis.common.grounding_runs import image_runs, plan, run_keys
from litelvlm.budget import Budget
from litelvlm.errors import LiteLVLMError

B = Budget


def test_plan_runs_every_method_at_every_budget_and_the_baseline_once():
    assert plan(["none", "litelvlm"], [B(576), B(64)], 576) == [("none", B(576)), ("litelvlm", B(576)),
                                                                ("litelvlm", B(64))]
    runs = plan(["none", "fastv"], [B(64), B(8), B(64)], None)  # N depends on the image: the baseline keeps all
    assert runs == [("none", Budget.ALL), ("fastv", B(64)), ("fastv", B(8))]
    assert run_keys(runs) == [("none", 0), ("fastv", 64), ("fastv", 8)]  # the tables' budget column
    with pytest.raises(LiteLVLMError, match=r"^--budgets: budget must satisfy 1 <= K <= 576 \(the number of patches\); "
                                            r"got 600$"):
        plan(["litelvlm"], [B(600)], 576)
    with pytest.raises(LiteLVLMError, match="empty"):
        plan([], [B(64)], 576)
    with pytest.raises(LiteLVLMError, match="empty"):
        plan(["litelvlm"], [], 576)
    with pytest.raises(LiteLVLMError, match="unknown|not-a-method"):
        plan(["not-a-method"], [B(64)], 576)


def test_image_runs_skip_what_an_image_cannot_keep_with_one_warning(caplog):
    runs = plan(["none", "fastv"], [B(300), B(64)], None)
    with caplog.at_level(logging.WARNING):
        assert image_runs(runs, 100, image_id=7) == [("none", Budget.ALL), ("fastv", B(64))]
    assert [r.getMessage() for r in caplog.records] == ["image 7 has 100 visual tokens: budget(s) 300 skipped"]
    assert image_runs(runs, 300) == runs


def test_a_study_hands_ground_its_budgets_as_budget_objects(tiny_glamm, monkeypatch, tmp_path, toy_refer):
    """eval-grounding, retention and positions on the tiny GLaMM: every budget ``ground`` receives is a Budget."""
    from analysis.grounding.compute import run_grounding
    from analysis.grounding.options import GroundingArgs
    from analysis.retention.compute import synthetic_example
    from analysis.retention.pipeline import family_tables
    from litelvlm.cli import main

    seen = []
    ground = type(tiny_glamm).ground
    monkeypatch.setattr(type(tiny_glamm), "ground",
                        lambda self, prep, method="none", budget=None, *a, **k: seen.append(budget)
                        or ground(self, prep, method, budget, *a, **k))
    args = GroundingArgs(refer_dir=str(toy_refer), model="tiny-random", out=str(tmp_path / "g"), methods=["none,random"],
                         budgets="8,4", limit_images=1, n_boot=10, protocol="per-expression")
    assert args.budgets == [B(8), B(4)]
    assert run_grounding(args, pipe=tiny_glamm) == 0
    assert seen and all(isinstance(b, Budget) for b in seen) and set(seen) == {B(tiny_glamm.num_visual_tokens), B(8), B(4)}
    seen.clear()  # retention on a family's pipeline
    image, texts = synthetic_example()
    table = family_tables(tiny_glamm, "tiny-random:0", [("0", image, texts)], Budget.parse_list("8,4"), ["random"])[0]
    assert set(seen) == {B(8), B(4)} and sorted(set(table["budget"])) == [4, 8]
    seen.clear()
    assert main(["positions", "--model", "tiny-random:0", "--refer-dir", str(toy_refer), "--methods", "fastv",
                 "--budgets", "8,4", "--out", str(tmp_path / "positions")]) == 0
    assert set(seen) >= {B(8), B(4)} and all(isinstance(b, Budget) for b in seen), seen
