"""A study's budgets are one type from the command line on: every subcommand's budget list is parsed word by
word into :class:`~litelvlm.budget.Budget` objects at parse time (``Budget.list_argument``), and a bad budget
(its form, or ``all`` in a list to prune at) is a usage error, exit 2, one line naming the option, nothing
written."""

from __future__ import annotations

import argparse

import pytest

from litelvlm.budget import Budget
from litelvlm.cli import all_commands, build_parser, main

#: every subcommand with a list of budgets, and the options holding one
BUDGET_LISTS = {"eval-grounding": ["--budgets"], "retention": ["--budgets"], "positions": ["--budgets"],
                "validate": ["--budgets"], "efficiency": ["--budgets"], "eval-video": ["--budgets"],
                "explore": ["--budgets", "--mask-budgets"], "plan": ["--budgets", "--video-budgets"]}
BAD = {"0": "got '0'", "-1": "got '-1'", "1.5": "got '1.5'", "x": "got 'x'", "64,0": "got '0'",
       "all": "'all' is the unpruned baseline's budget"}


def _budget_options(command: str) -> dict[str, argparse.Action]:
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.option_strings[0]: a for a in sub._actions if a.option_strings and "budget" in a.dest}


def test_every_budget_list_of_every_subcommand_is_a_budget_type():
    found = {c: sorted(o for o, a in _budget_options(c).items() if a.type == Budget.list_argument)
             for c in all_commands()}
    assert {c: o for c, o in found.items() if o} == {c: sorted(o) for c, o in BUDGET_LISTS.items()}
    singles = {c: o for c in all_commands() for o,
               a in _budget_options(c).items() if a.type == Budget.argument}
    assert singles == {"select": "--budget"}  # one budget, K or all (tests/litelvlm/test_budget.py)
    for command in BUDGET_LISTS:  # none is left as strings or ints for a study to convert
        for option, action in _budget_options(command).items():
            assert action.type in (Budget.list_argument, Budget.argument), (command, option, action.type)
            assert all(isinstance(b, Budget) for b in (action.default or [])), (command, option,
                                                                                action.default)


@pytest.mark.parametrize("value", list(BAD))
@pytest.mark.parametrize("command,option", [(c, o) for c, os in BUDGET_LISTS.items() for o in os])
def test_a_bad_budget_is_a_usage_error_naming_the_option(command, option, value, tmp_path, capsys):
    out = tmp_path / ("page.html" if command == "explore" else "out")
    argv = [command, option, value, "--out", str(out)]
    if command in ("eval-grounding", "validate", "positions"):
        argv += ["--refer-dir", str(tmp_path)]
    if command == "plan":
        argv += ["--data-dirs", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and BAD[value] in err and err.rstrip().endswith("; see --help"), err
    assert "Traceback" not in err and not out.exists()


def test_budget_words_and_commas_join_in_order():
    parser = build_parser(only="eval-grounding")
    ns = parser.parse_args(["eval-grounding", "--refer-dir", "d", "--out", "o", "--budgets", "576,192", "64"])
    assert ns.budgets == [Budget(576), Budget(192), Budget(64)]


@pytest.mark.parametrize("command", list(BUDGET_LISTS))
def test_an_empty_budget_list_is_refused_not_taken_for_the_default(command, tmp_path, capsys, coco128,
                                                                   monkeypatch):
    """``--budgets ""`` (or ``,``) is refused by the parser, never read as the command's default;
    explore's ``--mask-budgets ""`` alone means what its help says: no masks."""
    import sys

    out = tmp_path / ("page.html" if command == "explore" else "out")
    argv = [command, "--budgets", ",", "--out", str(out)]
    if command in ("eval-grounding", "validate", "positions"):
        argv += ["--refer-dir", str(coco128)]
    if command == "plan":
        argv += ["--data-dirs", str(coco128)]
    if command == "explore":
        argv += ["--image", str(next((coco128 / "images").iterdir())), "--text", "a thing"]
    loaded = []
    monkeypatch.setattr("litelvlm.registry.families.load_pipeline", lambda *a,
                        **k: loaded.append(a) or sys.exit("loaded"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    # the declaration's one refusal, by the parser (litelvlm.shared_options.budgets_option)
    assert "argument --budgets: an empty list; give at least one value" in err, err
    assert "Traceback" not in err and not out.exists() and not loaded, err
