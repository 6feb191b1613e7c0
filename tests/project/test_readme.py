"""README.md is a user's page: at most 16,000 bytes (detail lives in docs/), every command in its table at a
glance, and every example states its expected time on 2 cores; docs/commands.md holds an example of every
command."""

from __future__ import annotations

import re
from pathlib import Path

from litelvlm.cli import all_commands

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMMANDS_PAGE = ROOT / "docs" / "commands.md"
#: a time as the README states one: "about 15 s on 2 cores", "under 1 min on 2 cores", "a few seconds", "hours
#: on 2 cores"
TIME = re.compile(r"(about|under) \d+(\.\d+)? ?(s|min)\b[^`]{0,40}?on 2 cores|a few seconds|hours on "
                  r"2\s+cores")


def examples(text: str) -> list[tuple[str, str]]:
    """(example, the text after it up to the next example) of every command line in a ```bash block and every
    inline ``litelvlm COMMAND --option ...`` span (a mention of ``--help`` alone is no example)."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        found += [(line, line) for line in block.splitlines() if line.strip() and not line.startswith("#")]
    spans = [m for m in re.finditer(r"`(litelvlm [a-z-]+ [^`]*--[^`]*)`", text) if "--help" not in m.group(1)]
    for m, nxt in zip(spans, [*spans[1:], None]):
        found.append((m.group(1), text[m.end():nxt.start() if nxt else len(text)]))
    return found


def test_readme_is_a_short_page():
    assert len(README.read_bytes()) <= 16_000


def test_every_readme_example_states_its_time_on_2_cores():
    found = examples(README.read_text())
    assert len(found) >= 4  # the two setup lines, the examples under the commands' table
    # an install alone takes the download's time, and says so
    missing = [ex for ex, after in found if not TIME.search(after[:200])
               and not ("bin/litelvlm" not in ex and "pytest" not in ex and "the download's" in ex)]
    assert missing == []


def test_examples_finds_examples_and_their_times():
    text = ("```bash\npip install x  # about 2 min on 2 cores\n```\n`litelvlm a --out x` (about 15 s on 2 "
            "cores) writes; `litelvlm b --out y` writes.\n`litelvlm COMMAND --help` is no example")
    found = examples(text)
    assert [e for e, _ in found] == ["pip install x  # about 2 min on 2 cores", "litelvlm a --out x",
                                     "litelvlm b --out y"]
    assert [bool(TIME.search(after[:200])) for _, after in found] == [True, True, False]


def test_every_command_is_in_the_readme_table_with_a_timed_example_in_the_commands_page():
    table = README.read_text().split("## Commands at a glance", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([a-z-]+)`(?:, `([a-z-]+)`)? \|", table, flags=re.M))
    listed = {name for pair in listed for name in pair if name}
    timed = {ex.split()[1] for ex, after in examples(COMMANDS_PAGE.read_text()) if TIME.search(after[:200])}
    commands = set(all_commands())
    assert commands - listed == set() and commands - timed == set()
