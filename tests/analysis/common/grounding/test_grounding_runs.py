"""A study's runs (analysis.common.grounding.grounding_runs): (method, Budget) from the command line to the
family's ground, the range checked once (plan against a fixed N, image_runs against each image's), tables
keyed by the column."""

from __future__ import annotations

import logging

import pytest

from analysis.common.grounding.grounding_runs import image_runs, plan, run_keys
from litelvlm.budget import Budget
from litelvlm.errors import LiteLVLMError

B = Budget


def test_plan_runs_every_method_at_every_budget_and_the_baseline_once():
    assert plan(["none", "litelvlm"], [B(576), B(64)], 576) == [("none", B(576)), ("litelvlm", B(576)),
                                                                ("litelvlm", B(64))]
    # N depends on the image: the baseline keeps all
    runs = plan(["none", "fastv"], [B(64), B(8), B(64)], None)
    assert runs == [("none", Budget.ALL), ("fastv", B(64)), ("fastv", B(8))]
    assert run_keys(runs) == [("none", 0), ("fastv", 64), ("fastv", 8)]  # the tables' budget column
    with pytest.raises(LiteLVLMError, match=r"^--budgets: budget must satisfy 1 <= K <= 576 \(the number of "
                                            r"patches\); got 600$"):
        plan(["litelvlm"], [B(600)], 576)
    with pytest.raises(LiteLVLMError, match="empty"):
        plan([], [B(64)], 576)
    # no budget: refused by the options' declaration, at the parser (tests/litelvlm/test_cli_args.py)
    assert plan(["none", "litelvlm"], [], 576) == [("none", B(576))]
    with pytest.raises(LiteLVLMError, match="unknown|not-a-method"):
        plan(["not-a-method"], [B(64)], 576)


def test_image_runs_skip_what_an_image_cannot_keep_with_one_warning(caplog):
    runs = plan(["none", "fastv"], [B(300), B(64)], None)
    with caplog.at_level(logging.WARNING):
        assert image_runs(runs, 100, image_id=7) == [("none", Budget.ALL), ("fastv", B(64))]
    assert [r.getMessage() for r in caplog.records] == [
        "image 7 has 100 visual tokens: budget(s) 300 skipped"]
    assert image_runs(runs, 300) == runs


@pytest.mark.parametrize("family", ["glamm", "unipixel"])
def test_budgets_reach_ground_as_budgets_range_checked_once_per_input(family, tiny_glamm, tiny_unipixel_pipe,
                                                                      monkeypatch, tmp_path, toy_refer):
    """eval-grounding hands ``ground`` Budget objects, and from the command line to the selection kernels the
    range rule (``litelvlm.budget.in_range``) runs once per budget and input: against a fixed N once in the
    plan (GLaMM), against each image's N once (UniPixel); ``ground`` and the kernels it calls (DivPrune's,
    PruMerge's ``check_budget``) do not check again. Retention and positions hand ``ground`` Budgets too."""
    import litelvlm.budget as budget_module
    from analysis.grounding.compute import run_grounding
    from analysis.grounding.options import GroundingArgs
    from analysis.retention.compute import synthetic_example
    from analysis.retention.pipeline import family_tables
    from litelvlm.cli import main

    pipe = tiny_glamm if family == "glamm" else tiny_unipixel_pipe
    seen, checks = [], []
    ground_many, rule = type(pipe).ground_many, budget_module.in_range   # ``ground``'s one implementation
    monkeypatch.setattr(type(pipe), "ground_many", lambda self, preps, method="none", budget=None, *a, **k:
                        seen.append(budget) or ground_many(self, preps, method, budget, *a, **k))
    monkeypatch.setattr(budget_module, "in_range", lambda k, n,
                        extra=0: checks.append((k, n)) or rule(k, n, extra))
    model = "tiny-random:0" if family == "glamm" else "unipixel-tiny-random:0"
    args = GroundingArgs(refer_dir=str(toy_refer), model=model, out=str(tmp_path / "g"),
                         protocol="per-expression",
                         methods=["none,divprune,prumerge"], budgets="8,4", limit_images=1, n_boot=10)
    assert args.budgets == [B(8), B(4)]
    assert run_grounding(args, pipe=pipe) == 0
    assert seen and all(isinstance(b, Budget) for b in seen), seen
    # N depends on the image: 8 and 4 once against it (the baseline keeps all: no check)
    if family == "unipixel":
        (n,) = {n for _, n in checks}
        assert sorted(checks) == [(4, n), (8, n)] and set(seen) == {Budget.ALL, B(8), B(4)}
        return
    assert sorted(checks) == [(4, 576), (8, 576)]  # N = 576: the plan checks 8 and 4 (the baseline keeps N)
    assert set(seen) == {B(576), B(8), B(4)}
    seen.clear()  # retention on a family's pipeline
    image, texts = synthetic_example()
    table = family_tables(pipe, model, [("0", image, texts)], Budget.parse_list("8,4"), ["random"])[0]
    assert set(seen) == {B(8), B(4)} and all(isinstance(b, Budget) for b in seen) and set(
        table["budget"]) == {4, 8}
    seen.clear()
    assert main(["positions", "--model", model, "--refer-dir", str(toy_refer), "--methods", "fastv",
                 "--budgets", "8,4", "--out", str(tmp_path / "positions")]) == 0
    assert set(seen) == {Budget.ALL, B(8), B(4)} and all(isinstance(b, Budget) for b in seen), seen
