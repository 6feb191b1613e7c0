"""Committed notebooks: outputs stripped, a ``parameters`` cell, and generated from the figure_set modules
(``analysis/<study>/figure_set.py``) by ``analysis/figures/notebook_gen.py``."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from analysis.figures import notebook_gen
from analysis.figures.registry import FIGURE_SETS

NOTEBOOKS = sorted(notebook_gen.NOTEBOOK_DIR.glob("*.ipynb"))
#: the figure sets' notebooks (00_explore.ipynb is the explorer's: tests/litelvlm/explore/test_notebook.py)
FIGURE_SET_NOTEBOOKS = [p for p in NOTEBOOKS if p.name != "00_explore.ipynb"]


def test_every_family_has_its_notebook_and_no_stray_ones():
    known = {notebook_gen.notebook_path(f) for f in FIGURE_SETS.values()}
    assert known == set(FIGURE_SET_NOTEBOOKS), ("a figure_set without its notebook, or a notebook without a "
                                                "figure_set in analysis.figures.registry")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_no_outputs(path: Path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `litelvlm figures --write-notebooks`"
    assert "widgets" not in nb["metadata"] and "papermill" not in nb["metadata"]


@pytest.mark.parametrize("path", FIGURE_SET_NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_sets_results_model_smoke(path: Path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    names = {t.id for node in ast.parse("".join(tagged[0]["source"])).body for t in node.targets}
    assert {"RESULTS", "MODEL", "SMOKE", "OUT"} <= names


@pytest.mark.parametrize("figure_set", FIGURE_SETS.values(), ids=lambda f: f.name)
def test_committed_notebook_is_the_generated_one(figure_set):
    committed = notebook_gen.notebook_path(figure_set).read_text()
    assert committed == notebook_gen.notebook_text(figure_set), (
        f"{figure_set.notebook}.ipynb differs from {figure_set.draw.__module__}; run `litelvlm figures "
        "--write-notebooks`")


@pytest.mark.parametrize("figure_set", FIGURE_SETS.values(), ids=lambda f: f.name)
def test_notebook_body_only_calls_plot_functions(figure_set):
    body = notebook_gen.draw_body(figure_set.draw)
    calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Call)}
    assert any(c.startswith("plots.") for c in calls)
    assert not [n for n in ast.walk(ast.parse(body)) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_draw_body_drops_docstring_and_return():
    def draw(tables):
        """Doc."""
        figs = {"a": tables}  # a comment survives
        return figs

    assert notebook_gen.draw_body(draw) == 'figs = {"a": tables}  # a comment survives\n'
