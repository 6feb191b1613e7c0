"""One mechanism for bad counts (``arg(minimum=...)``): every subcommand refuses them at parse time,
exit 2, one line naming the option, nothing written."""

from __future__ import annotations

import pytest

from litelvlm.cli import main

#: (command, option, bad value, the smallest accepted value); budgets are Budgets
#: (tests/end_to_end/test_budget_flags.py)
CASES = [
    ("eval-grounding", "--limit-images", "-40", 1), ("eval-grounding", "--limit-images", "0", 1),
    ("eval-grounding", "--chunk", "0", 1), ("eval-grounding", "--max-sentences", "0", 1),
    ("eval-grounding", "--boot-seed", "-1", 0), ("eval-video", "--boot-seed", "-3", 0),
    ("importance", "--limit-images", "-1", 1), ("importance", "--max-sentences", "0", 1),
    ("importance", "--internal-batch-size", "0", 1),
    ("reversal", "--limit-sentences", "-40", 1), ("reversal", "--batch-size", "0", 1),
    ("reversal", "--text-batch-size", "0", 1),
    ("sink", "--limit-sentences", "0", 1), ("sink", "--batch-size", "0", 1),
    ("retention", "--limit-images", "-2", 1),
    ("demo", "--scenes", "1", 2), ("demo", "--show", "0", 1),
    ("toy-data", "--scenes", "0", 1), ("toy-data", "--size", "0", 32), ("toy-data", "--sentences", "0", 1),
    ("toy-train", "--steps", "0", 1), ("toy-train", "--batch-size", "1", 2),
    ("toy-train", "--eval-every", "0", 1),
]


@pytest.mark.parametrize("command,option,value,least", CASES)
def test_bad_count_is_a_usage_error(tmp_path, capsys, command, option, value, least):
    out = tmp_path / "out"
    argv = [command, "--out", str(out), option, value]
    if command in ("eval-grounding", "importance", "validate"):
        argv += ["--refer-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be >= {least}, got {value.split(',')[-1]}" in err, err
    assert err.rstrip().endswith("; see --help") and "usage:" not in err and not out.exists()
