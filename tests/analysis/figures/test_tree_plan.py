"""How a results tree's runs are named (:func:`analysis.figures.tree.plan`) and read for a notebook
(:func:`analysis.figures.tree.load_runs`): every file names its run (family/model, and the run's folder under
the tree's root, in the file name and the figure's label), the same whatever else the tree holds; every run is
read, none dropped silently."""

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


def test_every_run_is_named_by_its_folder_under_the_root(tmp_path):
    root = tmp_path / "runs"
    runs = [run(root / "a" / "imp", "glamm-tiny-random:0"), run(root / "b" / "imp", "glamm-tiny-random:0"),
            run(root / "c", "glamm-tiny-random:1")]
    names = [(g.prefix, g.label) for g in plan(FS, runs, root)]
    assert names == [("importance_glamm-tiny-random-0_a-imp", "glamm/glamm-tiny-random:0 (a/imp)"),
                     ("importance_glamm-tiny-random-0_b-imp", "glamm/glamm-tiny-random:0 (b/imp)"),
                     ("importance_glamm-tiny-random-1_c", "glamm/glamm-tiny-random:1 (c)")]
    # the tree's root is the run, or the run sits in the figure set's own folder (importance/): no folder
    # named; folders a file name cannot tell apart: numbered
    runs = [run(root, "glamm-tiny-random:0"), run(root / "x y", "glamm-tiny-random:0"),
            run(root / "x-y", "glamm-tiny-random:0"), run(root / "importance", "glamm-tiny-random:1")]
    assert [g.prefix for g in plan(FS, runs, root)] == [
        "importance_glamm-tiny-random-0", "importance_glamm-tiny-random-0_x-y",
        "importance_glamm-tiny-random-0_x-y-2", "importance_glamm-tiny-random-1"]


def test_a_runs_file_names_do_not_depend_on_what_else_is_in_the_tree(tmp_path):
    """Every subset of a tree names each of its runs as the whole tree does: a second run of a model renames
    nothing (before, the first run's files gained a folder suffix and lost their old names)."""
    from itertools import combinations

    root = tmp_path / "runs"
    tree = [run(root / "a", "glamm-tiny-random:0"), run(root / "b" / "imp", "glamm-tiny-random:0"),
            run(root / "importance", "glamm-tiny-random:1"), run(root / "c", "glamm-tiny-random:1"),
            run(root / "d", "glamm-tiny-random:2")]
    whole = {g.runs[0].folder: (g.prefix, g.label) for g in plan(FS, tree, root)}
    for k in range(1, len(tree) + 1):
        for subset in combinations(tree, k):
            assert {g.runs[0].folder: (g.prefix, g.label) for g in plan(FS, list(subset), root)} == {
                r.folder: whole[r.folder] for r in subset}, [r.folder.name for r in subset]


def test_runs_drawn_together_are_named_by_their_shared_folder(tmp_path):
    """A figure set drawing the runs of one folder together (validate: ``parent``) names the group by
    that folder, one run or several."""
    fs = FIGURE_SETS["validate"]
    root = tmp_path / "runs"

    def validate(folder: Path) -> Run:
        ident = {"study": "validate", "family": "glamm", "model": "glamm-tiny-random:0"}
        ident = read_identity({"identity": ident})
        return Run(folder, {}, ident)

    one = plan(fs, [validate(root / "sweep" / "none")], root)
    both = plan(fs, [validate(root / "sweep" / "none"), validate(root / "sweep" / "int8")], root)
    assert [g.prefix for g in one] == [g.prefix for g in both] == ["validate_glamm-tiny-random-0_sweep"]
    assert [g.prefix for g in plan(fs, [validate(root / "validate" / "none")], root)] == [
        "validate_glamm-tiny-random-0"]


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
