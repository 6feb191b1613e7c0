"""One mechanism for bad counts (``arg(minimum=...)``): every subcommand refuses them at parse time,
exit 2, one line naming the option, nothing written."""

from __future__ import annotations

import pytest

from litelvlm.cli import main

CASES = [
    ("eval-grounding", "--limit", "-40"), ("eval-grounding", "--limit", "0"), ("eval-grounding", "--chunk", "0"),
    ("eval-grounding", "--max-sentences", "0"),
    ("importance", "--limit", "-1"), ("importance", "--max-sentences", "0"), ("importance", "--internal-batch-size", "0"),
    ("reversal", "--limit", "-40"), ("reversal", "--batch-size", "0"), ("reversal", "--text-batch-size", "0"),
    ("sink", "--limit", "0"), ("sink", "--batch-size", "0"),
    ("retention", "--limit", "-2"),
]


@pytest.mark.parametrize("command,option,value", CASES)
def test_bad_count_is_a_usage_error(tmp_path, capsys, command, option, value):
    out = tmp_path / "out"
    argv = [command, "--out", str(out), option, value]
    if command in ("eval-grounding", "importance"):
        argv += ["--refer-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be >= 1, got {value}" in err and f"usage: litelvlm {command}" in err
    assert not out.exists()
