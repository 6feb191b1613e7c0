"""The notebooks in ``notebooks/``, generated from the figure families.

A family's notebook is its parameters cell, a call to ``family.load``, the body of its ``draw``
function copied verbatim, then :meth:`~analysis.figures.family.Family.save`.
``litelvlm figures --write-notebooks`` regenerates them and a test checks that the committed
notebooks equal the generated ones, so the notebook and the command cannot diverge.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

from analysis.figures.family import Family
from analysis.figures.registry import FAMILIES
from litelvlm.io import atomic_path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"


#: the cell after loading: a banner (markdown) when the results were made from random or toy weights
BANNER_CELL = ("from IPython.display import Markdown\n"
               "from litelvlm.provenance import weights_banner\n\n"
               "banner = weights_banner(*tables[MODELS_KEY])\n"
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


def plot_imports(family: Family) -> str:
    """The notebook's imports of what ``family``'s drawing calls: the ``plots`` module it names (its study's, or the
    one it draws with, e.g. family 9 with family 4's), and ``analysis.common.style`` when the drawing uses it."""
    plots = family.draw.__globals__.get("plots")
    study = plots.__name__.rsplit(".", 1)[0] if plots is not None else family.draw.__module__.rsplit(".", 1)[0]
    lines = ["from analysis.common import style\n"] if "style." in draw_body(family.draw) else []
    return "".join(lines) + f"from {study} import plots\n"


def _source_file(family: Family) -> str:
    """The module file that defines ``family``'s drawing, relative to the repository."""
    return family.draw.__module__.replace(".", "/") + ".py"


def make_notebook(family: Family):
    """The notebook of ``family`` (an ``nbformat`` v4 notebook, no outputs)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    cells = [
        new_markdown_cell(
            f"# {family.notebook[:2]} · {family.title}\n\n{family.description}\n\n"
            f"Run top to bottom. With the defaults (`SMOKE = True`, `RESULTS = None`) the results are made now, "
            f"small, with {family.smoke_note}: such figures show that the pipeline works, not findings. "
            f"For the real figures set `RESULTS` to the output folder of `{family.command}` (or to a folder "
            f"holding a `{family.name}/` subfolder) and `SMOKE = False`.\n\n"
            f"The same figures come from the command line: `litelvlm figures --family {family.name} "
            f"[--results DIR] [--smoke]`. This notebook is generated from `{_source_file(family)}` "
            f"(`litelvlm figures --write-notebooks`); edit that file, not the notebook."),
        new_code_cell("RESULTS = None  # results folder (None: make small smoke results now)\n"
                      "MODEL = None  # model for smoke results (None: the default tiny model of the family)\n"
                      "SMOKE = True\n"
                      "OUT = None  # folder for the PDF and PNG files; None: this notebook's own, "
                      f"notebooks/out/{family.name}/\n# (or $LITELVLM_FIGURES_DIR/{family.name}): the same "
                      "folder whatever the working directory, never the committed figures/",
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from IPython.display import Image, display\n\n"
                      + plot_imports(family)
                      + "from analysis.figures.registry import FAMILIES\n"
                      "from analysis.figures.family import MODELS_KEY\n"
                      + "".join(f"{line}\n" for line in family.extra_imports)
                      + f'\nfamily = FAMILIES["{family.name}"]\n'
                      "family.check()\n"
                      "tables = family.load(RESULTS, SMOKE, MODEL)\n"
                      "sorted(tables)"),
        new_code_cell(BANNER_CELL, metadata={"tags": ["weights-banner"]}),
        new_code_cell(draw_body(family.draw)
                      + "paths = family.save(figs, tables, OUT)  # named after the runs' family and model\n"
                      "[str(p) for p in paths]"),
        new_code_cell('for p in paths:\n    if p.suffix == ".png":\n        display(Image(filename=str(p)))'),
    ]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
        cell["id"] = f"{family.name}-{i}"
    nbformat.validate(nb)
    return nb


def notebook_path(family: Family, notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> Path:
    """Where ``family``'s notebook lives: ``notebook_dir/<family.notebook>.ipynb``."""
    return Path(notebook_dir) / f"{family.notebook}.ipynb"


def notebook_text(family: Family) -> str:
    """The exact file contents of ``family``'s notebook."""
    import nbformat

    return nbformat.writes(make_notebook(family)) + "\n"


def write_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """(Re)write every family's notebook; returns the paths."""
    out = []
    for fam in FAMILIES.values():
        path = notebook_path(fam, notebook_dir)
        with atomic_path(path) as tmp:
            tmp.write_text(notebook_text(fam))
        out.append(path)
    return out
