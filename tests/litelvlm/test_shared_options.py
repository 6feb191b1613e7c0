"""The options several commands share are declared once (:mod:`litelvlm.shared_options`): every command's
``--budgets``, ``--seed``, ``--model``, ``--out``, ``--device``, ``--dtype``, ``--limit-images``,
``--methods``, ``--backend``, ``--quantize``, ``--quantize-backend``, ``--split-by`` ... come from their one
declaration, each command's default a named constant; ``--budgets`` is read into Budgets once, by the parser,
and that list travels on unread."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from analysis.common.options.defaults import (
    GROUNDING_BUDGETS,
    PAPER_BUDGETS,
    PAPER_VIDEO_BUDGETS,
    POSITIONS_BUDGETS,
    RETENTION_BUDGETS,
    VIDEO_BUDGETS,
)
from litelvlm.budget import Budget
from litelvlm.cli import all_commands, build_parser
from litelvlm.cli_args import declaration
from litelvlm.shared_options import SHARED_OPTIONS
from tests.fixtures.cli import command_actions

COMMANDS = sorted(all_commands())
#: (command, flag) -> its default budgets: the named constant it passes to the one declaration
DEFAULT_BUDGETS = {("eval-grounding", "--budgets"): GROUNDING_BUDGETS,
                   ("efficiency", "--budgets"): GROUNDING_BUDGETS,
                   ("retention", "--budgets"): RETENTION_BUDGETS,
                   ("positions", "--budgets"): POSITIONS_BUDGETS,
                   ("eval-video", "--budgets"): VIDEO_BUDGETS, ("plan", "--budgets"): PAPER_BUDGETS[1:],
                   ("plan", "--video-budgets"): PAPER_VIDEO_BUDGETS[1:], ("validate", "--budgets"): None,
                   ("explore", "--budgets"): None, ("explore", "--mask-budgets"): None}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_shared_option_comes_from_its_one_declaration(command):
    """An option whose field is a shared one (``budgets``, ``seed``, ...) is declared by its group in
    :mod:`litelvlm.shared_options`, never by a command's own ``arg(...)``."""
    for flag, action in command_actions(command).items():
        if action.dest in SHARED_OPTIONS:
            assert declaration(action).get("shared") == action.dest, (command, flag)
        if "budgets" in action.dest:
            assert declaration(action).get("shared") == "budgets", (command, flag)


def test_the_default_budgets_are_the_named_constants():
    found = {}
    for command, flag in DEFAULT_BUDGETS:
        default = command_actions(command)[flag].default
        found[command, flag] = None if default is None else tuple(b.column for b in default)
        assert default is None or all(isinstance(b, Budget) for b in default)
    assert found == DEFAULT_BUDGETS
    assert (GROUNDING_BUDGETS, RETENTION_BUDGETS, POSITIONS_BUDGETS, VIDEO_BUDGETS) == (
        (576, 192, 128, 64, 32), (576, 192, 64, 32), (192, 64), (196, 81))


def test_the_video_cost_table_defaults_to_the_one_video_constant():
    """The video cost table (a heavy module: read as source) takes its default budgets from the one
    constant eval-video's ``--budgets`` defaults to."""
    tree = ast.parse((Path(__file__).resolve().parents[2] / "litelvlm/videoglamm/cost.py").read_text())
    assigned = {t.id: ast.unparse(node.value) for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert assigned["DEFAULT_BUDGETS"] == "VIDEO_BUDGETS" and VIDEO_BUDGETS == PAPER_VIDEO_BUDGETS[1:]


@pytest.fixture
def budget_reads(monkeypatch) -> list[str]:
    """The names of the Budget readers called (``parse``, ``parse_list``, ``list_of``, ``of``, ...) from now
    on."""
    reads: list[str] = []
    for name in ("parse", "parse_list", "list_of", "of", "argument", "list_argument"):
        bound = getattr(Budget, name)
        monkeypatch.setattr(Budget, name, classmethod(
            lambda cls, *a, _name=name, _bound=bound, **k: reads.append(_name) or _bound(*a, **k)))
    return reads


#: each command with budgets, its budget option, and the other options it needs to parse
BUDGET_COMMANDS = {"eval-grounding": ("--budgets", ["--refer-dir", "R"]),
                   "positions": ("--budgets", ["--refer-dir", "R"]),
                   "validate": ("--budgets", ["--refer-dir", "R"]), "efficiency": ("--budgets", []),
                   "retention": ("--budgets", []), "eval-video": ("--budgets", []),
                   "plan": ("--video-budgets", ["--data-dirs", "R"]), "explore": ("--mask-budgets", [])}


@pytest.mark.parametrize("command", list(BUDGET_COMMANDS))
def test_the_parsers_budgets_are_the_options_budgets(command, budget_reads, tmp_path):
    """The list of Budgets the parser made is the options' own (``as_args``: the same object), read by no
    Budget reader after the parser."""
    from analysis.common.runs.study import as_args
    from litelvlm.cli_args import from_namespace
    from litelvlm.explore.command import ExploreArgs

    flag, extra = BUDGET_COMMANDS[command]
    argv = [command, "--out", str(tmp_path / "o"), flag, "64,16", *[str(tmp_path) if x == "R" else x
                                                                     for x in extra]]
    ns = build_parser(only=command).parse_args(argv)
    dest = flag[2:].replace("-", "_")
    parsed, reads_at_parse = getattr(ns, dest), list(budget_reads)
    assert parsed == [Budget(64), Budget(16)] and reads_at_parse[0] == "list_argument"   # the parser's read
    if command == "explore":
        options = from_namespace(ExploreArgs, ns)
    else:
        options = as_args(importlib.import_module(all_commands()[command][0]).run.study, ns)
    assert getattr(options, dest) is parsed and budget_reads == reads_at_parse


def test_eval_grounding_hands_the_parsers_budgets_to_its_runs(coco128, tmp_path, budget_reads):
    """eval-grounding's checks hand the parser's very list down, and the runs hold its budgets checked once
    against N (the same values): no reader between the parser and ``ground``."""
    from analysis.common.grounding.grounding_runs import plan
    from analysis.common.runs.study import as_args
    from analysis.grounding.options import GroundingArgs, check_args

    ns = build_parser(only="eval-grounding").parse_args(
        ["eval-grounding", "--refer-dir", str(coco128), "--out", str(tmp_path / "o"), "--model",
         "tiny-random:0", "--budgets", "64,16", "--methods", "none,litelvlm"])
    parsed, reads_at_parse = ns.budgets, list(budget_reads)
    methods, budgets = check_args(as_args(GroundingArgs, ns))
    runs = plan(methods, budgets, 576)
    assert budgets is parsed and [b for _, b in runs] == [Budget(576), Budget(64), Budget(16)]
    assert reads_at_parse[0] == "list_argument" and budget_reads == reads_at_parse, budget_reads


def test_an_options_class_built_in_code_reads_its_budgets_once():
    """A Python caller's ``"64,16"`` or ints are read into Budgets where the options are made; a list of
    Budgets passes as it is (the same object)."""
    from analysis.grounding.options import GroundingArgs

    made = GroundingArgs(refer_dir="r", out="o", budgets=["64,16", 8])
    assert made.budgets == [Budget(64), Budget(16), Budget(8)]
    mine = [Budget(32)]
    assert GroundingArgs(refer_dir="r", out="o", budgets=mine).budgets is mine
