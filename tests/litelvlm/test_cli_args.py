"""One check of what each option declares (``arg(minimum=..., choices=..., nonempty=...)``,
:mod:`litelvlm.cli_args`): the parser applies it to every command (exit 2, one line naming the option,
nothing written), options built in code meet the same check (:func:`~litelvlm.cli_args.check_declared`), and
no command checks a declared bound again by hand."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from litelvlm.cli import all_commands, main
from litelvlm.cli_args import check_declared, declaration
from litelvlm.errors import LiteLVLMError
from tests.fixtures.cli import command_actions, one_error_line

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = sorted(all_commands())
#: the shared options' refused values, and words of the one line refusing each
SHARED_BAD = {
    "--budgets": [("", "an empty list; give at least one value"), (",", "an empty list"), ("0", "got '0'"),
                  ("64,0", "got '0'"), ("all", "unpruned baseline's budget")],
    "--video-budgets": [("", "an empty list"), ("0", "got '0'")],
    "--mask-budgets": [("0", "got '0'")],
    "--seed": [("-1", "must be >= 0, got -1")],
    "--limit-images": [("0", "must be >= 1, got 0"), ("-3", "must be >= 1, got -3")],
}


@pytest.fixture
def parse_only(monkeypatch):
    """A command line the parser accepts runs nothing: refused after parsing, as a check would."""
    def accepted(args):
        raise LiteLVLMError("the parser accepted it")

    monkeypatch.setattr("litelvlm.cli.check_common_options", accepted)


def _refused(command: str, flag: str, value: str, words: str, tmp_path, capsys) -> str:
    out = tmp_path / "out"
    line = one_error_line(main([command, flag, value, "--out", str(out)]), capsys.readouterr().err, command)
    assert line.startswith(f"litelvlm {command}: error: argument {flag}: ") and words in line, line
    assert line.endswith("; see --help") and not out.exists(), line
    return line


@pytest.mark.parametrize("command", COMMANDS)
def test_the_shared_options_refuse_what_they_declare_in_every_command(command, tmp_path, capsys, parse_only):
    """``--budgets ''``, ``--budgets 0``, ``--seed -1``, ``--limit-images 0``...: exit 2, one line naming the
    option, for every command that has it (before any other check: no input is needed)."""
    flags = command_actions(command)
    for flag in sorted(set(SHARED_BAD) & set(flags)):
        for value, words in SHARED_BAD[flag]:
            _refused(command, flag, value, words, tmp_path, capsys)


def test_the_table_sees_the_shared_options():
    have = {flag: [c for c in COMMANDS if flag in command_actions(c)] for flag in SHARED_BAD}
    assert have["--budgets"] == ["efficiency", "eval-grounding", "eval-video", "explore", "plan", "positions",
                                 "retention", "validate"]
    assert len(have["--seed"]) >= 13 and set(have["--limit-images"]) >= {"eval-grounding", "importance",
                                                                          "retention", "plan"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_declared_minimum_is_refused_by_the_parser(command, tmp_path, capsys, parse_only):
    """Each option declaring ``minimum=`` refuses one less, by the parser (exit 2, one line)."""
    for flag, action in command_actions(command).items():
        least = declaration(action).get("minimum")
        if least is not None and flag not in SHARED_BAD:
            bad = least - 1 if float(least).is_integer() else least - 0.5
            _refused(command, flag, f"{bad:g}", f"must be >= {least:g}, got {bad:g}", tmp_path, capsys)


def test_options_built_in_code_meet_the_same_check(coco128, tmp_path):
    """A run from code (``run(GroundingArgs(...))``) is refused as the command line is, naming the flag,
    before anything loads or is written."""
    from analysis.grounding import GroundingArgs, run

    base = {"refer_dir": str(coco128), "out": str(tmp_path / "o"), "model": "tiny-random:0"}
    for change, words in (({"chunk": 0}, "--chunk: must be >= 1, got 0"),
                          ({"seed": -1}, "--seed: must be >= 0, got -1"),
                          ({"budgets": []}, "--budgets: an empty list; give at least one value"),
                          ({"limit_images": 0}, "--limit-images: must be >= 1, got 0"),
                          ({"dtype": "float64"}, "--dtype: invalid choice: 'float64'")):
        with pytest.raises(LiteLVLMError, match=re.escape(words)):
            run(GroundingArgs(**base, **change))
        assert not (tmp_path / "o").exists()
    check_declared(GroundingArgs(**base))   # the defaults pass


def _declared_minimums() -> dict[str, float]:
    """dest -> the minimum its option declares, over every command (a dest declared with two minimums: the
    smaller)."""
    found: dict[str, float] = {}
    for command in COMMANDS:
        for action in command_actions(command).values():
            least = declaration(action).get("minimum")
            if least is not None:
                found[action.dest] = min(least, found.get(action.dest, least))
    return found


def _compared_field(node: ast.Compare) -> tuple[str, float] | None:
    """(field, bound) of ``x.field < N``, ``x.field <= N - 1``, ``N > x.field`` or ``not N <= x.field``."""
    parts = [node.left, *node.comparators]
    for (left, op, right) in zip(parts, node.ops, parts[1:], strict=False):
        for attr, const, op_ok in ((left, right, isinstance(op, (ast.Lt, ast.LtE))),
                                   (right, left, isinstance(op, (ast.Gt, ast.GtE)))):
            name = attr.attr if isinstance(attr, ast.Attribute) else None
            if name and op_ok and isinstance(const, ast.Constant) and isinstance(const.value, (int, float)):
                strict = isinstance(op, (ast.Lt, ast.Gt))
                return name, const.value if strict else const.value + 1
    return None


def _shadows(tree: ast.AST, minimums: dict[str, float]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If) and any(isinstance(s, ast.Raise) for s in node.body)):
            continue
        for sub in ast.walk(node.test):
            hit = _compared_field(sub) if isinstance(sub, ast.Compare) else None
            if hit and hit[0] in minimums and hit[1] <= minimums[hit[0]]:
                found.append((node.lineno, ast.unparse(node.test)))
            # not N <= x.field (a range whose lower end is the declared minimum)
            if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Not) and isinstance(sub.operand,
                                                                                         ast.Compare):
                c = sub.operand
                if isinstance(c.left, ast.Constant) and isinstance(c.ops[0], ast.LtE) and isinstance(
                        c.comparators[0], ast.Attribute) and c.comparators[0].attr in minimums and \
                        c.left.value <= minimums[c.comparators[0].attr]:
                    found.append((node.lineno, ast.unparse(node.test)))
    return found


def _command_sources() -> list[Path]:
    return sorted([*ROOT.glob("analysis/**/*.py"), *ROOT.glob("litelvlm/commands/*.py"),
                   *ROOT.glob("litelvlm/explore/*.py"), *ROOT.glob("litelvlm/toy/*.py")])


def test_no_hand_written_check_shadows_a_declared_minimum():
    """No ``if a.chunk < 1: raise ...`` (or ``a.x <= 0``, ``not 1 <= a.x``) for an option whose declaration
    says ``minimum=``: the parser refuses it, and :func:`check_declared` a run built in code."""
    minimums = _declared_minimums()
    assert {"chunk", "batch_size", "limit_images", "seed", "max_sentences"} <= set(minimums)
    shadows = [f"{p.relative_to(ROOT)}:{line}: {test}" for p in _command_sources()
               for line, test in _shadows(ast.parse(p.read_text(encoding="utf-8")), minimums)]
    assert not shadows, shadows


def test_the_scan_sees_a_shadow():
    tree = ast.parse("if a.chunk < 1 or a.x:\n    raise E()\nif not 0 <= a.seed <= 9:\n    raise E()\n"
                     "if a.warmup < 1 and a.prefill:\n    raise E()\n")
    assert [line for line, _ in _shadows(tree, {"chunk": 1, "seed": 0, "warmup": 0})] == [1, 3]


def _strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_one_empty_list_message():
    """An empty ``--budgets`` (or any list declared non-empty) has one message, the declaration's: no
    command writes its own ``--budgets is empty``."""
    nonempty = {flag for c in COMMANDS for flag, a in command_actions(c).items()
                if declaration(a).get("nonempty")}
    assert {"--budgets", "--video-budgets", "--data-dirs", "--models", "--signals"} <= nonempty
    sources = [*_command_sources(), *ROOT.glob("litelvlm/*.py")]
    own = [f"{p.relative_to(ROOT)}: {s!r}" for p in sources for s in _strings(p)
           if re.search(r"is empty", s) and (any(f in s for f in nonempty) or "budgets" in s.lower()
                                              or s.startswith(" is empty"))]
    assert not own, own
