"""A string continued over lines reads as one: every piece of an implicit concatenation starts on its own
line, aligned with the first piece, with the first element after its bracket, or at a hanging indent (four
columns in from the line that opens the bracket). Read from the tokens of every tracked Python file."""

from __future__ import annotations

import io
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = (tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)


def _runs(src: str) -> list[tuple[list, set[int]]]:
    """Each implicit concatenation over several pieces: (the pieces' (start, end), the columns allowed)."""
    toks, lines = list(tokenize.generate_tokens(io.StringIO(src).readline)), src.splitlines()
    stack: list[tuple[int, ...]] = []
    runs, cur, allowed = [], [], set()
    for i, t in enumerate(toks):
        if t.type in SKIP:
            if t.type == tokenize.NEWLINE:
                runs, cur = (runs + [(cur, allowed)] if len(cur) > 1 else runs), []
            continue
        if t.type == tokenize.STRING:
            if not cur:
                line = lines[t.start[0] - 1]
                allowed = {t.start[1], len(line) - len(line.lstrip()) + 4, *(stack[-1] if stack else ())}
            cur.append((t.start, t.end))
        else:
            runs, cur = (runs + [(cur, allowed)] if len(cur) > 1 else runs), []
        if t.type == tokenize.OP and t.string in "([{":
            after = next((u for u in toks[i + 1:] if u.type not in (tokenize.NL, tokenize.COMMENT)), None)
            line = lines[t.start[0] - 1]
            visual = (after.start[1],) if after is not None and after.start[0] == t.start[0] else ()
            stack.append((*visual, len(line) - len(line.lstrip()) + 4))
        elif t.type == tokenize.OP and t.string in ")]}" and stack:
            stack.pop()
    return runs


def misaligned(src: str) -> list[int]:
    """The first line of every run whose pieces share a line or start at a column the rules do not allow."""
    bad = []
    for pieces, allowed in _runs(src):
        rows = [start[0] for start, _ in pieces]
        cols = {start[1] for start, _ in pieces[1:]}
        if len(set(rows)) != len(rows) or len(cols) > 1 or not cols <= allowed:
            bad.append(rows[0])
    return bad


def test_the_rule_tells_aligned_from_misaligned():
    good = 'x = f("a "\n      "b")\ny = {\n    "k": "a "\n         "b",\n}\nz = g(\n    "a "\n    "b")\n'
    bad = 'x = f("a "\n  "b ")\ny = f("a " "b "\n      "c")\nz = {"k": "a "\n     "b"\n           "c"}\n'
    assert misaligned(good) == []
    assert misaligned(bad) == [1, 3, 5]


def test_every_continued_string_is_aligned():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(files) > 300  # the scan saw the tree
    found = [f"{f}:{row}" for f in files if (ROOT / f).is_file()
             for row in misaligned((ROOT / f).read_text(encoding="utf-8"))]
    assert not found, f"{len(found)} misaligned string continuations: {found[:20]}"
