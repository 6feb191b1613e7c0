"""A budget is one type from the command line to the selector (litelvlm.budget.Budget), checked once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from litelvlm.budget import Budget, BudgetError
from litelvlm.cli_args import add_dataclass_arguments, arg, from_namespace
from litelvlm.errors import LiteLVLMError


def test_parse_reads_a_whole_number_or_all():
    assert Budget.parse("64") == Budget(64) and Budget.parse(" 64 ").count(576) == 64
    assert Budget.parse("all") is Budget.ALL and Budget.parse("ALL") is Budget.ALL
    for bad in ("0", "-3", "1.5", "many", ""):
        with pytest.raises(BudgetError, match=r"budget must satisfy 1 <= K \(a whole number of visual "
                                              r"tokens\) or be 'all'; got"):
            Budget.parse(bad)
    assert str(Budget.parse("64")) == "64" and str(Budget.ALL) == "all"


def test_all_keeps_every_token_and_is_the_tables_zero():
    assert Budget.ALL.is_all and not Budget(5).is_all
    assert Budget.ALL.count(576) == 576 and Budget.ALL.count(1234) == 1234  # N per input
    assert Budget.ALL.fits(1) and Budget(64).fits(64) and not Budget(65).fits(64)
    # the baseline's row when N depends on the image
    assert Budget.ALL.column == 0 and Budget(64).column == 64
    assert Budget.from_column(0) is Budget.ALL and Budget.from_column(192) == Budget(192)
    assert Budget.of(None) is Budget.ALL and Budget.of(7) == Budget(7) and Budget.of(Budget(7)) == Budget(7)


def test_range_is_checked_once_by_count_with_one_message():
    with pytest.raises(BudgetError, match=r"^budget must satisfy 1 <= K <= 576 \(the number of patches\); "
                       r"got 577$"):
        Budget(577).count(576)
    with pytest.raises(BudgetError, match=r"1 <= K <= 577 \(576 patches \+ 1 extra\); got 578"):
        Budget(578).count(576, extra_tokens=1)
    assert Budget(577).count(576, extra_tokens=1) == 577
    for bad in (0, -1, True, 2.0, "3"):  # not a budget: refused where it is made, whatever N
        with pytest.raises(BudgetError, match="1 <= K"):
            Budget.of(bad)
    assert issubclass(BudgetError, LiteLVLMError)  # the CLI's exit 2


def test_ground_and_select_count_a_budget_once(tiny_glamm, tiny_glamm_prep, monkeypatch):
    """The pipeline converts a budget at its edge and counts it once: ``ground`` for every stage,
    ``select``."""
    from litelvlm.methods.select import select

    pipe, prepared = tiny_glamm, tiny_glamm_prep
    calls = []
    count = Budget.count
    monkeypatch.setattr(Budget, "count", lambda self, n,
                        extra=0: calls.append((self, n)) or count(self, n, extra))
    n = pipe.num_visual(prepared)
    for method, budget in (("litelvlm", 8), ("fastv", Budget(8)), ("none", None), ("llm-attention", 8)):
        calls.clear()
        out = pipe.ground(prepared, method, budget)
        assert len(calls) == 1 and calls[0][1] == n, (method, calls)
        assert out.budget == (n if budget is None else 8)
    calls.clear()
    assert len(select("random", prepared.selector_inputs(), Budget(5))) == 5 and len(calls) == 1
    with pytest.raises(BudgetError, match=f"1 <= K <= {n} "):
        pipe.ground(prepared, "litelvlm", n + 1)


def test_a_budget_field_is_a_command_line_type_exiting_2_on_bad_input(capsys):
    @dataclass
    class Args:
        budget: Budget = arg(None, help="K or all")
        budgets: list[str] = arg(["64", "all"], help="budgets", each=Budget)

    parser = argparse.ArgumentParser(prog="p")
    add_dataclass_arguments(parser, Args)
    a = from_namespace(Args, parser.parse_args(["--budget", "32", "--budgets", "8,all", "4"]))
    assert a.budget == Budget(32) and a.budgets == ["8,all", "4"]
    assert from_namespace(Args, parser.parse_args(["--budget", "all"])).budget is Budget.ALL
    for argv in (["--budget", "0"], ["--budget", "x"], ["--budgets", "8,0"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "budget must satisfy 1 <= K" in err and "Traceback" not in err, err


def test_a_studys_budget_list_is_budgets_k_at_least_1_and_never_all(capsys):
    assert Budget.parse_list("576,192") == [Budget(576), Budget(192)]
    assert Budget.parse_list(["64", 16, Budget(8), "4,2"]) == [Budget(64), Budget(16), Budget(8), Budget(4),
                                                               Budget(2)]
    assert Budget.parse_list(None) == [] and Budget.parse_list(7) == [Budget(7)]
    for bad, said in (("0", "got '0'"), ("x", "got 'x'"), (0, "got 0"), ("8,-1", "got '-1'")):
        with pytest.raises(BudgetError,
                           match=f"budget must be a whole number K >= 1 of visual tokens; {said}"):
            Budget.parse_list(bad)
    with pytest.raises(BudgetError, match="'all' is the unpruned baseline's budget"):
        Budget.parse_list("64,all")
    # a CLIP's retention
    assert Budget(600).at_most(576) == Budget(576) and Budget(64).at_most(576) == Budget(64)

    @dataclass
    class Args:
        budgets: list[Budget] = arg(Budget.parse_list("192,64"), help="budgets")

    parser = argparse.ArgumentParser(prog="p")
    add_dataclass_arguments(parser, Args)
    assert from_namespace(Args, parser.parse_args([])).budgets == [Budget(192), Budget(64)]
    assert parser.parse_args(["--budgets", "8,4", "2"]).budgets == [Budget(8), Budget(4), Budget(2)]
    # a repeated flag replaces
    assert parser.parse_args(["--budgets", "8", "--budgets", "3"]).budgets == [Budget(3)]
    for argv in (["--budgets", "8,0"], ["--budgets", "all"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 2 and "argument --budgets: " in capsys.readouterr().err


def test_a_budget_checked_against_an_input_is_not_checked_again(monkeypatch):
    """``checked`` (a planner's one check) marks the budget; ``count`` against that input, and a kernel's
    ``check_budget`` handed the resulting Count, do not run the range rule again; a larger claim is
    checked."""
    import litelvlm.budget as budget_module
    from litelvlm.budget import Count
    from litelvlm.pruning import check_budget

    rule, checks = budget_module.in_range, []
    monkeypatch.setattr(budget_module, "in_range", lambda k, n,
                        extra=0: checks.append((k, n, extra)) or rule(k, n, extra))
    b = Budget(64).checked(576)
    assert b == Budget(64) and hash(b) == hash(Budget(64)) and repr(b) == "Budget(tokens=64)" and checks == [
        (64, 576, 0)]
    assert Budget(600).checked(576) is None and Budget.ALL.checked(3) is Budget.ALL
    checks.clear()
    k = b.count(576, extra_tokens=1)  # PruMerge's N + 1: the check against 576 covers it
    assert (k, type(k), k.limit) == (64, Count, 577) and checks == []
    assert check_budget(k, 576, 1) == 64 and checks == []  # a kernel handed the Count
    # counted vs more
    assert check_budget(Budget(64).count(577), 576) == 64 and checks == [(64, 577, 0), (64, 576, 0)]
    with pytest.raises(BudgetError, match="1 <= K <= 576"):
        check_budget(Budget(577).count(576, 1), 576)
    assert k + 1 == 65 and type(k + 1) is int and f"{k}" == "64" and Budget(k) == Budget(64)
    assert type(Budget(k).tokens) is int
