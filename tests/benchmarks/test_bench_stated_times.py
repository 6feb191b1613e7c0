"""benchmarks/bench_stated_times.py: it finds every timed example of the README (so a time the README states
is one the benchmark measures), and its dry run lists them without running any."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_stated_times import documented_commands, main, stated_commands  # noqa: E402


def test_every_timed_readme_example_is_measured():
    readme = (ROOT / "README.md").read_text()
    found = stated_commands(readme)
    timed = re.findall(r"\(about [\d.]+ (?:s|min)\b[^)]{0,40}on 2 cores", readme)
    assert len(found) == len(timed) + 1   # and the first line's demo (the tests: the suite's own run)
    assert found[0][1][0] == "demo" and all(seconds > 0 for *_, seconds in found)
    # then the commands page's examples, in its order: the last ones read the earlier ones' runs/
    names = [args[0] for _, args, _ in documented_commands()]
    assert {"validate", "figures", "tables", "toy-train", "eval-video"} <= set(names)
    assert names.index("figures") > names.index("eval-grounding") and names.index("tables") > names.index(
        "validate")


def test_every_time_the_docs_state_is_measured_too():
    """A statement "(about N s on 2 cores)" in docs/ names its command, which the benchmark runs; the same
    command stated twice is stated alike."""
    measured = {tuple(args): seconds for _, args, seconds in documented_commands()}
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        timed = re.findall(r"\(about [\d.]+ (?:s|min)\b[^)]{0,40}on 2 cores", text)
        found = stated_commands(text)
        assert len(found) == len(timed), (doc.name, timed)
        assert all(measured[tuple(args)] == seconds for _, args, seconds in found), doc.name


def test_the_dry_run_lists_and_runs_nothing(capsys):
    assert main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("(dry run)") == len(documented_commands())
    assert "flags:" in out
