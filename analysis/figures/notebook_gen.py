"""The notebooks in ``notebooks/``, generated from the figure sets.

A figure set's notebook is its parameters cell (papermill's), a call to
:func:`analysis.figures.tree.load_runs` (every run of ``RESULTS``, read and named as ``litelvlm figures``
does), the body of its ``draw`` function copied verbatim into a loop over the runs, then
:func:`analysis.figures.output.save_runs` (the figure set's earlier files in ``OUT`` replaced). ``litelvlm
figures --write-notebooks`` regenerates them and a test checks that the committed notebooks equal the
generated ones, so the notebook and the command cannot diverge.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from analysis.common.presentation.figure_set import FigureSet
from analysis.figures.registry import FIGURE_SETS
from litelvlm.explore.notebook import notebook_of
from litelvlm.machine.optional import optional_import
from litelvlm.runs.io import atomic_path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"


#: the cell after loading: a banner (markdown) when the results were made from random or toy weights
BANNER_CELL = ("from IPython.display import Markdown\n"
               "from litelvlm.registry.provenance import weights_banner\n\n"
               "banner = weights_banner(*dict.fromkeys(m for tables in runs for m in tables[MODELS_KEY]))\n"
               "if banner:  # results of random or toy weights: the figures below are not findings\n"
               '    display(Markdown(f"> **⚠ {banner}**"))')


def draw_body(fn: Callable) -> str:
    """The source of ``fn``'s body without its docstring and final ``return``, dedented."""
    src = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(src)
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
        body = body[1:]
    if body and isinstance(body[-1], ast.Return):
        body = body[:-1]
    lines = src.splitlines()
    return textwrap.dedent("\n".join(lines[body[0].lineno - 1: body[-1].end_lineno])).rstrip() + "\n"


def plot_imports(figure_set: FigureSet) -> str:
    """The notebook's imports of what ``figure_set``'s drawing calls: the ``plots`` module it names (its
    study's, or the one it draws with, e.g. figure set 9 with figure set 4's), and
    ``analysis.common.presentation.style`` when the drawing uses it."""
    plots = figure_set.draw.__globals__.get("plots")
    study = plots.__name__.rsplit(".", 1)[0] if plots is not None else figure_set.draw.__module__.rsplit(
        ".", 1)[0]
    style = "from analysis.common.presentation import style\n"
    lines = [style] if "style." in draw_body(figure_set.draw) else []
    return "".join(lines) + f"from {study} import plots\n"


def module_imports(module_name: str) -> dict[str, str]:
    """{name: the import line that binds it} of the module-level imports of the module ``module_name``."""
    bound: dict[str, str] = {}
    for node in ast.parse(inspect.getsource(sys.modules[module_name])).body:
        if isinstance(node, ast.ImportFrom) and node.module not in (None, "__future__") and not node.level:
            for alias in node.names:
                bound[alias.asname or alias.name] = (f"from {node.module} import {alias.name}"
                                                     + (f" as {alias.asname}" if alias.asname else ""))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound[alias.asname or alias.name.split(".")[0]] = (
                    f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
    return bound


def global_imports(figure_set: FigureSet) -> list[str]:
    """The imports of the module-level names ``figure_set``'s drawing reads besides ``plots``, ``style`` and
    ``tables`` (its module's import of the name, or the name imported from its module where it is defined
    there), those of ``extra_imports`` aside: the copied body runs in the notebook as in its module."""
    nodes = list(ast.walk(ast.parse(draw_body(figure_set.draw))))
    stored = {n.id for n in nodes if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    read = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    names = sorted(read - stored - {"plots", "style", "tables"} - set(dir(builtins)))
    module = figure_set.draw.__module__
    bound = module_imports(module)
    lines = [bound.get(name, f"from {module} import {name}") for name in names
             if name in figure_set.draw.__globals__]
    return [line for line in dict.fromkeys(lines) if line not in figure_set.extra_imports]


def _source_file(figure_set: FigureSet) -> str:
    """The module file that defines ``figure_set``'s drawing, relative to the repository."""
    return figure_set.draw.__module__.replace(".", "/") + ".py"


def intro(figure_set: FigureSet) -> str:
    """The notebook's first (markdown) cell: what it draws, its parameters, the command drawing the same."""
    return (f"# {figure_set.notebook[:2]} · {figure_set.title}\n\n{figure_set.description}\n\n"
            "Run top to bottom. With the defaults (`SMOKE = True`, `RESULTS = None`) the results are made "
            f"now, small, with {figure_set.smoke_note}: such figures show that the pipeline works, not "
            "findings. For the real figures set `RESULTS` to a results tree (any folder holding run folders "
            f"of `{figure_set.command}`, at any depth): every run of it is drawn, each under its own family "
            "and model (and its folder where one model has two runs), as the command draws them. With "
            f"papermill: `papermill notebooks/{figure_set.notebook}.ipynb run.ipynb -p RESULTS runs/ "
            "-p OUT figs/`.\n\n"
            f"The same files come from the command line: `litelvlm figures --figure-set {figure_set.name} "
            f"[--results DIR] [--smoke]`. This notebook is generated from `{_source_file(figure_set)}` "
            "(`litelvlm figures --write-notebooks`); edit that file, not the notebook.")


def parameters(figure_set: FigureSet) -> str:
    """The tagged ``parameters`` cell (papermill's ``-p NAME VALUE`` replaces it)."""
    return ("RESULTS = None  # a results tree: each of its runs drawn (None: make small smoke results now)\n"
            "MODEL = None  # model for smoke results (None: the figure set's default tiny model)\n"
            "SMOKE = True  # without RESULTS, make small results now with tiny models\n"
            "OUT = None  # folder for the PDF and PNG files; None: this notebook's own, "
            f"notebooks/out/{figure_set.name}/\n# (or $LITELVLM_FIGURES_DIR/{figure_set.name}), whatever the "
            "working directory, never the committed figures/;\n"
            f"# the {figure_set.name} files an earlier run left there are replaced by this run's")


def loading(figure_set: FigureSet) -> str:
    """The cell that imports what the drawing calls and reads every run
    (:func:`analysis.figures.tree.load_runs`)."""
    return ("from IPython.display import Image, display\n\n"
            + plot_imports(figure_set)
            + "".join(f"{line}\n" for line in global_imports(figure_set))
            + "from analysis.figures.registry import FIGURE_SETS\n"
            "from analysis.common.presentation.figure_set import MODELS_KEY\n"
            "from analysis.figures.output import save_runs\n"
            "from analysis.figures.tree import load_runs\n"
            + "".join(f"{line}\n" for line in figure_set.extra_imports)
            + f'\nfigure_set = FIGURE_SETS["{figure_set.name}"]\n'
            "# every run (or runs drawn together) of RESULTS, read and named as `litelvlm figures` does\n"
            "runs = load_runs(figure_set, RESULTS, SMOKE, MODEL)\n"
            "len(runs)")


def drawing(figure_set: FigureSet) -> str:
    """The cell that draws each run with the figure set's ``draw`` body and saves them all."""
    return ("drawn = []\n"
            "for tables in runs:  # each on its own, as `litelvlm figures` draws them\n"
            + textwrap.indent(draw_body(figure_set.draw), "    ")
            + "    drawn.append((figs, tables))\n"
            "# named after each run's family and model; this figure set's earlier files in OUT removed\n"
            "paths = save_runs(figure_set, drawn, OUT)\n"
            "[str(p) for p in paths]")


def make_notebook(figure_set: FigureSet):
    """The notebook of ``figure_set`` (an ``nbformat`` v4 notebook, no outputs)."""
    v4 = optional_import("nbformat.v4")
    cells = [
        v4.new_markdown_cell(intro(figure_set)),
        v4.new_code_cell(parameters(figure_set), metadata={"tags": ["parameters"]}),
        v4.new_code_cell(loading(figure_set)),
        v4.new_code_cell(BANNER_CELL, metadata={"tags": ["weights-banner"]}),
        v4.new_code_cell(drawing(figure_set)),
        v4.new_code_cell('for p in paths:\n    if p.suffix == ".png":\n'
                         '        display(Image(filename=str(p)))'),
    ]
    return notebook_of(cells, figure_set.name)


def notebook_path(figure_set: FigureSet, notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> Path:
    """Where ``figure_set``'s notebook lives: ``notebook_dir/<figure_set.notebook>.ipynb``."""
    return Path(notebook_dir) / f"{figure_set.notebook}.ipynb"


def notebook_text(figure_set: FigureSet) -> str:
    """The exact file contents of ``figure_set``'s notebook."""
    nbformat = optional_import("nbformat")
    return nbformat.writes(make_notebook(figure_set)) + "\n"


def write_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """(Re)write every figure set's notebook; returns the paths."""
    out = []
    for fs in FIGURE_SETS.values():
        path = notebook_path(fs, notebook_dir)
        with atomic_path(path) as tmp:
            tmp.write_text(notebook_text(fs))
        out.append(path)
    return out
