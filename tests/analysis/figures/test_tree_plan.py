"""How a results tree's runs are named (:func:`analysis.figures.tree.plan`) and read for a notebook
(:func:`analysis.figures.tree.load_runs`): every file names its run (family/model, and the run's folder where
one model has two runs, in the file name and the figure's label); every run is read, none dropped silently."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.common.presentation.figure_set import NAME_KEY
from analysis.common.runs.identity import read_identity
from analysis.figures.registry import FIGURE_SETS
from analysis.figures.tree import Run, load_runs, plan
from litelvlm.errors import LiteLVLMError
from tests.analysis.figures.test_notebook_run_tree import two_importance_runs
from tests.analysis.figures.test_registry_labels import importance_run

FS = FIGURE_SETS["importance"]


def run(folder: Path, model: str) -> Run:
    """A run folder's record (nothing on disk): an importance run of ``model``."""
    ident = read_identity({"identity": {"study": "importance", "family": "glamm", "model": model}})
    return Run(folder, {}, ident)


def test_two_runs_of_one_model_name_their_folders_and_a_lone_run_does_not(tmp_path):
    root = tmp_path / "runs"
    runs = [run(root / "a" / "imp", "glamm-tiny-random:0"), run(root / "b" / "imp", "glamm-tiny-random:0"),
            run(root / "c", "glamm-tiny-random:1")]
    names = [(g.prefix, g.label) for g in plan(FS, runs, root)]
    assert names == [("importance_glamm-tiny-random-0_a-imp", "glamm/glamm-tiny-random:0 (a/imp)"),
                     ("importance_glamm-tiny-random-0_b-imp", "glamm/glamm-tiny-random:0 (b/imp)"),
                     ("importance_glamm-tiny-random-1", "glamm/glamm-tiny-random:1")]
    # the tree's root is a run itself: its own name; folders a file name cannot tell apart: numbered
    runs = [run(root, "glamm-tiny-random:0"), run(root / "x y", "glamm-tiny-random:0"),
            run(root / "x-y", "glamm-tiny-random:0")]
    assert [g.prefix for g in plan(FS, runs, root)] == [
        "importance_glamm-tiny-random-0_runs", "importance_glamm-tiny-random-0_x-y",
        "importance_glamm-tiny-random-0_x-y-2"]


def test_a_notebook_reads_every_run_of_a_tree_under_the_commands_names(tmp_path, capsys):
    root = two_importance_runs(tmp_path / "runs")
    importance_run("glamm-tiny-random:0", "glamm", 576)(root / "old")
    (root / "old" / "summary.csv").write_text("layer\n0\n")   # an older layout: skipped with a line
    tables = load_runs(FS, root)
    assert [t[NAME_KEY][0] for t in tables] == ["importance_glamm-tiny-random-0_a",
                                                 "importance_glamm-tiny-random-0_b"]
    assert f"figures: skipping {root / 'old'} (importance): " in capsys.readouterr().out
    with pytest.raises(LiteLVLMError, match="no importance runs to draw in .*litelvlm importance --out"):
        load_runs(FS, tmp_path / "runs" / "old")
