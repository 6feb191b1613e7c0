"""The generated notebooks (:mod:`analysis.figures.notebook_gen`): the drawing cell runs the figure set's
``draw`` body unchanged in a loop over the runs, and every name a notebook's cells read is bound by its cells
(a module-level name the drawing reads is imported as its module imports it: issue #67, a notebook that failed
on a name the command's module had)."""

from __future__ import annotations

import ast
import builtins

import pytest

from analysis.figures import notebook_gen
from analysis.figures.registry import FIGURE_SETS


@pytest.mark.parametrize("figure_set", FIGURE_SETS.values(), ids=lambda f: f.name)
def test_the_loop_runs_the_draw_body_unchanged(figure_set):
    loop = next(n for n in ast.parse(notebook_gen.drawing(figure_set)).body if isinstance(n, ast.For))
    body = ast.parse(notebook_gen.draw_body(figure_set.draw)).body
    assert ast.dump(ast.Module(loop.body[:-1], [])) == ast.dump(ast.Module(body, []))
    assert ast.unparse(loop.body[-1]) == "drawn.append((figs, tables))"


def _bound(tree: ast.AST) -> set[str]:
    """The names a cell binds: assignments, loop and comprehension targets, imports."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


@pytest.mark.parametrize("figure_set", FIGURE_SETS.values(), ids=lambda f: f.name)
def test_every_name_a_notebook_reads_is_bound_by_its_cells(figure_set):
    notebook = notebook_gen.make_notebook(figure_set)
    cells = [ast.parse(c.source) for c in notebook.cells if c.cell_type == "code"]
    bound = set(dir(builtins)).union(*map(_bound, cells))
    read = {n.id for tree in cells for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert read <= bound, f"{figure_set.notebook}: unbound {sorted(read - bound)}"


def test_a_module_level_name_the_drawing_reads_is_imported_as_its_module_imports_it():
    lines = notebook_gen.global_imports(FIGURE_SETS["importance"])
    assert "from analysis.importance.options import GRADIENT_SIGNALS" in lines
    assert all("import plots" not in line for line in lines)
