"""Small rooms: no module of the project over 400 lines, no function over 60 lines unless a comment on its
signature says why (CONTRIBUTING.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures.sources import parsed, text

ROOT = Path(__file__).resolve().parents[2]
TREES = ("litelvlm", "analysis", "benchmarks")
MAX_FILE, MAX_FUNCTION = 400, 60


def _modules() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py"))


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines()))
            > MAX_FILE}
    assert not long, long
    assert len(_modules()) > 100  # the walk sees the project


def test_no_function_over_60_lines_without_a_reason():
    long, excused = {}, 0
    for path in _modules():
        lines = text(path).splitlines()
        for node in ast.walk(parsed(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION:
                    signature = lines[node.lineno - 1: node.body[0].lineno - 1]  # the def, up to its body
                    if any("#" in line for line in signature):
                        excused += 1
                    else:
                        long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = size
    assert not long, long
    assert excused >= 1  # the benchmarks' linear scripts say why they are long
