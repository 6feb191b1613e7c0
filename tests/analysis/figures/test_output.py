"""The output folder of a figures run (``litelvlm figures --out``, a notebook's ``OUT``): the files an
earlier run left of the figure sets drawn now are removed when the new ones reach the folder (never beside
them); other figure sets' files and other files stay; a failed run leaves the folder as it was (issue #67)."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from analysis.figures.output import figure_files, owner  # noqa: E402
from litelvlm.cli import main  # noqa: E402
from tests.analysis.figures.test_notebook_run_tree import files, run_notebook, two_runs_drawn  # noqa: E402
from tests.analysis.figures.test_registry_labels import importance_run  # noqa: E402

#: another figure set's file and a file of no figure set, which a figures run of importance leaves alone
OTHERS = ("sink_clip-tiny336-random_sos_heatmap.png", "notes.txt")


def one_run(tmp_path: Path) -> Path:
    """A tree that is one importance run: its files name no folder."""
    one = tmp_path / "one"
    importance_run("glamm-tiny-random:0", "glamm", 576)(one)
    return one


def test_a_file_belongs_to_the_longest_figure_set_name_it_starts_with(tmp_path):
    assert owner("reversal_grid_clip-tiny336-random_auroc_by_layer.png") == "reversal_grid"
    assert owner("reversal_clip-tiny336-random_auroc_by_layer.png") == "reversal"
    assert owner("grounding_merged_grid_unipixel-tiny-random-5_ciou.pdf") == "grounding_merged_grid"
    assert owner("grounding_glamm-tiny-random-0_ciou.pdf") == "grounding"
    # a file written under a figure set's earlier name is its new one's, replaced when that one is drawn
    assert owner("merged_grounding_unipixel-tiny-random-5_ciou.pdf") == "grounding_merged_grid"
    assert owner("quantization_glamm-tiny-random-0_memory_cpu.png") == "validate"
    assert owner("notes.png") is None
    for name in ("reversal_grid_a.png", "reversal_b.pdf", "reversal_c.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in figure_files(tmp_path, ["reversal"])] == ["reversal_b.pdf"]


def test_the_command_replaces_an_earlier_runs_files(tmp_path, capsys, session_folders):
    one = one_run(tmp_path)
    out = tmp_path / "figures"
    argv = ["figures", "--figure-set", "importance", "--out", str(out), "--results"]
    # the folder `figures` wrote from a tree of two importance runs of one model (the same command, run once
    # per test session)
    shutil.copytree(two_runs_drawn(session_folders)[1], out, symlinks=True)
    tagged = [p.name for p in files(out)]
    runs = ("importance_glamm-tiny-random-0_a_", "importance_glamm-tiny-random-0_b_")
    assert tagged and all(n.startswith(runs) for n in tagged)
    for name in OTHERS:
        (out / name).write_text("kept")
    assert main([*argv, str(one)]) == 0
    now = [p.name for p in files(out) if p.name not in OTHERS]
    assert now and all(n.startswith("importance_glamm-tiny-random-0_") and "_a_" not in n for n in now)
    assert not set(now) & set(tagged)
    assert all((out / n).read_text() == "kept" for n in OTHERS)
    before = {p.name: p.read_bytes() for p in files(out)}
    (tmp_path / "empty").mkdir()
    assert main([*argv, str(tmp_path / "empty")]) == 2   # a failed run: the folder as it was
    assert {p.name: p.read_bytes() for p in files(out)} == before


def test_the_notebook_replaces_an_earlier_runs_files_as_the_command_does(tmp_path, capsys):
    one = one_run(tmp_path)
    out = tmp_path / "notebook"
    out.mkdir()
    earlier = ["importance_glamm-tiny-random-0_a_by_layer_spearman.png",
               "importance_glamm-tiny-random-0_b_by_layer_spearman.pdf"]
    for name in (*earlier, *OTHERS):
        (out / name).write_text("kept")
    paths = run_notebook("importance", RESULTS=str(one), SMOKE=False, OUT=str(out))
    assert paths and sorted(p.name for p in files(out)) == sorted([*(p.name for p in paths), *OTHERS])
    assert all((out / n).read_text() == "kept" for n in OTHERS)
