"""A figure set's notebook run with parameters (``RESULTS`` a results tree, set as papermill sets it)
writes the same files as ``litelvlm figures --results`` from the same tree: every run drawn, each file named
after its run (family/model, and the run's folder where one model has two runs), byte for byte (issue #67: the
importance notebook drew one of two runs, silently). The default test executes the notebook's cells in this
process; the slow one through a Jupyter kernel with papermill
(``analysis.figures.notebook_run.execute_notebook``)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from analysis.figures.notebook_gen import notebook_path  # noqa: E402
from analysis.figures.notebook_run import execute_notebook  # noqa: E402
from analysis.figures.registry import FIGURE_SETS  # noqa: E402
from litelvlm.cli import main  # noqa: E402
from tests.analysis.figures.test_registry_labels import importance_run  # noqa: E402


def two_importance_runs(root: Path) -> Path:
    """``root/a`` and ``root/b``: two importance runs of one model (the GLaMM ``tiny-random:0``), their
    numbers different."""
    for name in ("a", "b"):
        importance_run("glamm-tiny-random:0", "glamm", 576)(root / name)
    summary = pd.read_csv(root / "b" / "summary.csv")
    numbers = [c for c in summary.columns if c.startswith(("spearman_", "kendall_"))]
    summary[numbers] = summary[numbers] * -1.5
    summary.to_csv(root / "b" / "summary.csv", index=False)
    return root


def two_runs_drawn(session_folders) -> tuple[Path, Path]:
    """(the tree of :func:`two_importance_runs`, the folder ``litelvlm figures --results TREE --figure-set
    importance`` wrote from it), each made once per test session; the tests only read them (or copy them)."""
    root = session_folders("importance-two-runs", lambda base: two_importance_runs(base / "runs")) / "runs"

    def draw(base: Path) -> None:
        assert main(["figures", "--results", str(root), "--figure-set", "importance", "--out",
                     str(base / "command")]) == 0

    return root, session_folders("importance-two-runs-drawn", draw) / "command"


def files(folder: Path) -> list[Path]:
    """The files in ``folder`` (its lock and run record aside), by name."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def run_notebook(name: str, **parameters) -> list[Path]:
    """Execute the code cells of figure set ``name``'s notebook in this process, ``parameters`` set after its
    ``parameters`` cell as papermill sets them; returns its ``paths``."""
    cells = json.loads(notebook_path(FIGURE_SETS[name]).read_text())["cells"]
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)
            if "parameters" in cell["metadata"].get("tags", []):
                namespace.update(parameters)
    return namespace["paths"]


def check_same_files(got: list[Path], command: Path) -> None:
    """``got`` are the files of the folder ``command``, byte for byte, and name both runs of the tree."""
    want = files(command)
    assert sorted(p.name for p in got) == [p.name for p in want]
    for path in got:
        assert path.read_bytes() == (command / path.name).read_bytes(), f"{path.name}: the two routes differ"
    for run in ("a", "b"):   # both runs, each named: family/model and the run's folder (one model, two runs)
        mine = {p.stem for p in want if p.name.startswith(f"importance_glamm-tiny-random-0_{run}_")}
        assert f"importance_glamm-tiny-random-0_{run}_by_layer_spearman" in mine
    assert len(want) == 2 * len([p for p in want if "-0_a_" in p.name])


def test_the_notebook_with_parameters_draws_every_run_of_a_tree_as_the_command_does(tmp_path, capsys,
                                                                                   session_folders):
    root, command = two_runs_drawn(session_folders)
    paths = run_notebook("importance", RESULTS=str(root), SMOKE=False, OUT=str(tmp_path / "notebook"))
    check_same_files(paths, command)
    assert sorted(paths) == files(tmp_path / "notebook")


@pytest.mark.slow
def test_the_notebook_run_by_papermill_draws_every_run_of_a_tree_as_the_command_does(tmp_path, capsys):
    root = two_importance_runs(tmp_path / "runs")
    assert main(["figures", "--results", str(root), "--figure-set", "importance", "--out",
                 str(tmp_path / "command")]) == 0
    executed = tmp_path / "executed.ipynb"
    paths = execute_notebook(FIGURE_SETS["importance"], root, tmp_path / "notebook", smoke=False,
                             executed=executed)
    assert b'"output_type": "error"' not in executed.read_bytes()
    check_same_files(paths, tmp_path / "command")
    # the same through `litelvlm figures --via-notebooks`
    assert main(["figures", "--results", str(root), "--figure-set", "importance", "--via-notebooks", "--out",
                 str(tmp_path / "via")]) == 0
    check_same_files(files(tmp_path / "via"), tmp_path / "command")
