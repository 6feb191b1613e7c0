"""An argument error is one line, ``litelvlm CMD: error: ...; see --help``, exit 2, without argparse's usage
dump (issue #67, item 8): a bad budget, a missing required option, an unknown option or
subcommand."""

from __future__ import annotations

import pytest

from litelvlm.cli import main

CASES = {
    "bad budget": (["eval-grounding", "--budgets", "0", "--out", "OUT"], "litelvlm eval-grounding: error: "
                   "argument --budgets: "),
    "missing --out": (["reversal"], "litelvlm reversal: error: the following arguments are required: --out"),
    "unknown option": (["select", "--bogus"], "litelvlm select: error: unrecognized arguments: --bogus"),
    "not an int": (["reversal", "--limit-sentences", "x", "--out", "OUT"],
                   "litelvlm reversal: error: argument --limit-sentences: invalid int value: 'x'"),
    "unknown command": (["nonsense"], "litelvlm: error: argument COMMAND: invalid choice: 'nonsense'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_argument_error_is_one_line_naming_help(case, tmp_path, capsys):
    argv, start = CASES[case]
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(start) and lines[0].endswith("; see --help"), lines[0]
    assert "usage:" not in captured.err and not (tmp_path / "out").exists()
