"""Docstrings read as prose: no stray fragment mid-paragraph (one or two words on a line of their own that the
line before or the line after could have held, as a careless re-wrap leaves them). The official code
transcribed for the equality tests (``tests/official_*.py``) keeps its own text."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 110
#: a fragment: at most this many words ...
FRAGMENT_WORDS = 2
#: ... and characters
FRAGMENT_CHARS = 20


def _docstrings(tree: ast.Module):
    """(first line, last line) of every docstring in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                yield first.value.lineno, first.value.end_lineno


def fragments(text: str) -> list[int]:
    """The line numbers of ``text``'s docstring lines that are stray fragments (see the module)."""
    lines, found = text.splitlines(), []
    for start, end in _docstrings(ast.parse(text)):
        for n in range(start, end - 1):   # 0-based index n: the docstring's second line onwards, not its last
            before, line, after = lines[n - 1].rstrip(), lines[n].strip(), lines[n + 1].strip()
            if not (before.strip() and line and after) or before.strip().endswith(('"""', "::")):
                continue
            short = len(line.split()) <= FRAGMENT_WORDS and len(line) <= FRAGMENT_CHARS
            prose = not line.endswith((".", ":", ";", "?", "!")) and not line.startswith(("*", "-", ">>>"))
            fits = len(before) + 1 + len(line) <= WIDTH or len(lines[n + 1]) + 1 + len(line) <= WIDTH
            if short and prose and fits:
                found.append(n + 1)
    return found


def test_the_rule_finds_a_fragment_and_passes_prose():
    bad = 'def f():\n    """One line of text that goes on\n    and\n    continues here."""\n'
    good = ('def f():\n    """One line of text that goes on and\n    continues here.\n\n    * a bullet\n'
            '    """\n')
    assert fragments(bad) == [3] and fragments(good) == []


def test_no_docstring_holds_a_stray_fragment():
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    found = [f"{f}:{n}" for f in files if not Path(f).name.startswith("official_")
             for n in fragments((ROOT / f).read_text(encoding="utf-8"))]
    assert found == [], "re-wrap these docstring lines into their paragraph:\n" + "\n".join(found)
