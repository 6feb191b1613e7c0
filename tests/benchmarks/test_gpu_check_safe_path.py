"""The GPU check runs its Python steps with ``PYTHONSAFEPATH=1`` (a script's own folder is not on
``sys.path``): every benchmark script that imports a sibling puts its own folder on the path itself."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
SIBLINGS = {p.stem for p in BENCH.glob("*.py")}


def _sibling_imports(tree: ast.Module) -> set[str]:
    """The sibling modules a script imports (``import x`` or ``from x import y``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found & SIBLINGS


def _puts_its_folder_on_the_path(text: str) -> bool:
    """Whether the script inserts its own folder (``Path(__file__).resolve().parent``) into sys.path."""
    return "sys.path.insert(0, str(Path(__file__).resolve().parent))" in text


#: the scripts (run as ``python benchmarks/x.py``) that import a sibling module
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py")
                 if "__main__" in p.read_text() and _sibling_imports(ast.parse(p.read_text())))


def test_most_scripts_import_a_sibling():
    assert len(SCRIPTS) >= 10 and "gpu_check.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_that_imports_a_sibling_puts_its_folder_on_the_path(script):
    text = (BENCH / script).read_text()
    assert _puts_its_folder_on_the_path(text), (
        f"benchmarks/{script} imports {sorted(_sibling_imports(ast.parse(text)))} but leaves its folder off "
        "sys.path: it fails under PYTHONSAFEPATH=1, as the GPU check runs it")


def test_the_checks_python_steps_run_under_a_safe_path_from_anywhere(tmp_path):
    """``gpu_check.py`` (the check's first step runs it) from another directory with PYTHONSAFEPATH=1: its
    imports load and it prints its usage (no subcommand: exit 2, before anything heavy is imported)."""
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    done = subprocess.run([sys.executable, str(BENCH / "gpu_check.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage: gpu_check.py env" in done.stderr, done.stderr[-2000:]
