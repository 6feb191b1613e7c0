"""Committed notebooks: outputs stripped, a ``parameters`` cell, and generated from analysis/figures.py."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from analysis import figures

NOTEBOOKS = sorted(figures.NOTEBOOK_DIR.glob("*.ipynb"))
WIRED = [f for f in figures.FAMILIES.values() if f.wired]


def test_every_wired_family_has_its_notebook_and_no_stray_ones():
    assert {figures.notebook_path(f) for f in WIRED} <= set(NOTEBOOKS)
    known = {figures.notebook_path(f) for f in figures.FAMILIES.values()}
    assert set(NOTEBOOKS) <= known, "a notebook without a figure family in analysis/figures.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path: Path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `litelvlm figures --write-notebooks`"
    assert "widgets" not in nb["metadata"] and "papermill" not in nb["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_sets_results_model_smoke(path: Path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    names = {t.id for node in ast.parse("".join(tagged[0]["source"])).body for t in node.targets}
    assert {"RESULTS", "MODEL", "SMOKE", "OUT"} <= names


@pytest.mark.parametrize("family", WIRED, ids=lambda f: f.name)
def test_committed_notebook_is_the_generated_one(family):
    committed = figures.notebook_path(family).read_text()
    assert committed == figures.notebook_text(family), (
        f"{family.notebook}.ipynb differs from analysis/figures.py; run `litelvlm figures --write-notebooks`")


@pytest.mark.parametrize("family", WIRED, ids=lambda f: f.name)
def test_notebook_body_only_calls_plot_functions(family):
    body = figures.draw_body(family.draw)
    calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Call)}
    assert any(c.startswith("plots.") for c in calls)
    assert not [n for n in ast.walk(ast.parse(body)) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_draw_body_drops_docstring_and_return():
    def draw(tables):
        """Doc."""
        figs = {"a": tables}  # a comment survives
        return figs

    assert figures.draw_body(draw) == 'figs = {"a": tables}  # a comment survives\n'
