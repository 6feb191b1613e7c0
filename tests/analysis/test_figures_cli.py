"""``litelvlm figures``: argument errors, figure set skipping, the summary, and the files it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import analysis.figures.registry as registry
from analysis.common.presentation.figure_set import FigureSet
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.figures.registry import FIGURE_SETS
from analysis.figures.tree import draw_figure_set
from litelvlm.cli import main

NOTEBOOK_ORDER = ["reversal", "sink", "retention", "grounding", "importance", "efficiency", "validate",
                  "positions", "grounding_merged_grid", "reversal_grid", "video", "paired"]


def test_needs_results_or_smoke(capsys, tmp_path):
    assert main(["figures", "--out", str(tmp_path)]) == 2
    assert "--results DIR, or --smoke" in capsys.readouterr().err
    assert main(["figures", "--results", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["figures", "--smoke", "--figure-set", "bogus"]) == 2
    assert "unknown bogus" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_results_without_the_family_tables_name_the_missing_files(capsys, tmp_path):
    assert main(
        ["figures", "--results", str(tmp_path), "--figure-set", "retention", "--out",
         str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "retention.parquet" in err and f"litelvlm retention --out {tmp_path / 'retention'}" in err
    assert not (tmp_path / "f").exists()


def test_list_names_every_family(capsys, tmp_path):
    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    for name in NOTEBOOK_ORDER:
        assert name in out
    assert list(FIGURE_SETS) == NOTEBOOK_ORDER
    assert "[ready]" not in out and "give --results DIR" in out  # no results looked at: none claimed
    (tmp_path / "validate" / "none").mkdir(parents=True)
    (tmp_path / "validate" / "none" / "memory.csv").write_text("quantize\n")
    (tmp_path / "validate" / "old").mkdir(parents=True)   # no run identity in its config.json: not claimed
    (tmp_path / "validate" / "old" / "memory.csv").write_text("quantize\n")
    (tmp_path / "validate" / "old" / "config.json").write_text("{}")
    (tmp_path / "validate" / "none" / "config.json").write_text(
        json.dumps(run_identity("validate", "tiny-random:0")))
    assert main(["figures", "--list", "--results", str(tmp_path)]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert f"[results in {tmp_path / 'validate' / 'none'}]" in lines["validate"]
    assert f"[no results in {tmp_path}]" in lines["reversal"]


def test_each_family_is_registered_once_from_its_own_module_in_notebook_order():
    assert [f.notebook for f in FIGURE_SETS.values()] == sorted(f.notebook for f in FIGURE_SETS.values())
    for name, fs in FIGURE_SETS.items():
        module = getattr(registry, name)   # the module the registry imports under the figure set's name
        assert module.FIGURE_SET is fs and fs.name == name
        assert module.__name__.startswith("analysis.") and module.__name__.endswith(".figure_set")
        for fn in (fs.make_smoke, fs.read, fs.draw):
            assert fn.__module__ == module.__name__, fn
    assert not hasattr(registry, "register")


def _ghost() -> FigureSet:
    def nothing(*args):
        raise AssertionError("a figure set whose modules are missing is never made, read or drawn")

    return FigureSet(name="ghost", notebook="99_ghost", title="Ghost", description="",
                     command="litelvlm ghost",
                  requires=("analysis.no_such_module",), subdir="ghost", make_smoke=nothing, read=nothing,
                  draw=nothing, results_files=("ghost.csv",), make_results="litelvlm ghost --out {out}")


def test_unavailable_family_is_skipped_in_smoke_and_an_error_when_asked_for(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(registry, "FIGURE_SETS", {"ghost": _ghost()})
    assert main(["figures", "--smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipping ghost: needs analysis.no_such_module" in out and "not wired" not in out
    assert out.splitlines()[-1] == "figures: skipped 1: ghost (needs analysis.no_such_module)"
    assert main(["figures", "--smoke", "--figure-set", "ghost", "--out", str(tmp_path)]) == 2
    assert "analysis.no_such_module" in capsys.readouterr().err
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path)]) == 2  # not smoke: an error
    assert not list(tmp_path.glob("*.p*"))


def test_the_studies_of_smoke_results_print_as_the_figures_command_was_asked(monkeypatch, tmp_path):
    """``litelvlm -v figures --smoke``: the figure set's studies get the command's screen (no global)."""
    seen = []
    probe = FigureSet(name="probe", notebook="99_probe", title="Probe", description="",
                      command="litelvlm probe", requires=(), subdir="probe",
                      make_smoke=lambda d, model, screen: seen.append(screen), read=lambda d: {},
                      draw=lambda tables: {}, results_files=("probe.csv",),
                      make_results="litelvlm probe --out {out}")
    monkeypatch.setattr(registry, "FIGURE_SETS", {"probe": probe})
    a = ["-v", "figures", "--smoke", "--out", str(tmp_path / "a")]
    b = ["figures", "--smoke", "--out", str(tmp_path / "b")]
    assert main(a) == 0 and main(b) == 0
    # and the command line, which each smoke run's config.json records (Screen.argv)
    assert seen == [Screen(verbose=True, argv=tuple(a)), Screen(argv=tuple(b))]


def test_empty_results_skip_every_family_with_one_line_naming_its_folder_and_command(capsys, tmp_path):
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    skips = [line for line in lines if line.startswith("figures: skipping")]
    assert len(skips) == len(FIGURE_SETS)
    for line, fs in zip(skips, FIGURE_SETS.values()):
        assert line.startswith(f"figures: skipping {fs.name}: no results in {tmp_path};")
        assert fs.make_results.format(out=tmp_path / fs.subdir) in line
        assert f"litelvlm figures --smoke --figure-set {fs.name}" in line
    assert "litelvlm sink --out " + str(tmp_path / "sink") in captured.out
    assert "--protocol per-expression --out " + str(tmp_path / "grounding" / "per-expression") in captured.out
    assert lines[-2] == f"figures: wrote 0 files to {tmp_path / 'f'} from 0 figure sets (none)"
    assert lines[-1].startswith(f"figures: skipped {len(FIGURE_SETS)}: reversal (no results in {tmp_path})")
    assert "holds no results of any figure set" in captured.err
    assert not (tmp_path / "f").exists()


@pytest.mark.slow  # the default suite's time budget (about 10 s each)
def test_results_route_equals_the_family_function_and_skips_what_is_missing(tmp_path, capsys):
    fs = FIGURE_SETS["retention"]
    results = tmp_path / "results"
    fs.smoke_results(results, model="tiny-random")
    assert main(
        ["figures", "--results", str(results), "--figure-set", "retention", "--out",
         str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    # the run, its model
    assert f"figures: retention: clip/tiny-random from {results / 'retention'}: " in printed
    paths = draw_figure_set(fs, results / "retention", tmp_path / "b")  # one command's --out works too
    assert paths and {p.suffix for p in paths} == {".pdf", ".png"}
    assert all(p.name.startswith("retention_clip-tiny-random_") for p in paths)  # named after the model
    for p in paths:
        assert (tmp_path / "a" / p.name).read_bytes() == p.read_bytes(), p.name
    # without --figure-set: draws the figure sets it has results for, one line per skipped one, then a summary
    assert main(["figures", "--results", str(results), "--out", str(tmp_path / "c")]) == 0
    lines = capsys.readouterr().out.splitlines()
    others = [n for n in FIGURE_SETS if n != "retention"]
    assert [line.split(":")[1].split()[-1] for line in lines if "skipping" in line] == others
    assert lines[
        -2] == f"figures: wrote {len(paths)} files to {tmp_path / 'c'} from 1 figure sets (retention)"
    assert lines[-1] == f"figures: skipped {len(others)}: " + "; ".join(
        f"{n} (no results in {results})" for n in others)
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in paths)
    for p in paths:
        assert (tmp_path / "c" / p.name).read_bytes() == p.read_bytes(), p.name


@pytest.mark.parametrize("bad", ["--results-typo"])
def test_unknown_option_is_a_usage_error(bad, capsys):
    assert main(["figures", bad]) == 2
    assert capsys.readouterr().err.startswith("litelvlm figures: error: ")


# about 50 s on 2 cores; the default tree test (tests/analysis/figures/test_tree.py) draws each run on its own
@pytest.mark.slow
def test_sibling_run_folders_of_one_family_are_all_drawn_each_on_its_own(tmp_path, capsys):
    """``runs/retention`` and ``runs/retention-seed1`` (another model) under one tree: both are found and
    named as read, and each is drawn on its own under its model's name (each equal to drawing that folder
    alone), so the two models are never merged."""
    from analysis.retention.figure_set import smoke_retention

    fs = FIGURE_SETS["retention"]
    runs = tmp_path / "runs"
    for name, model in (("retention", "tiny336-random"), ("retention-seed1", "tiny336-random:1")):
        (runs / name).mkdir(parents=True)
        smoke_retention(runs / name, model)
    (runs / "notes").mkdir()  # a folder without results is not a run
    assert main(
        ["figures", "--results", str(runs), "--figure-set", "retention", "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert f"figures: retention: clip/tiny336-random from {runs / 'retention'}: " in printed
    assert f"figures: retention: clip/tiny336-random:1 from {runs / 'retention-seed1'}: " in printed
    for name, tag in (("retention", "clip-tiny336-random"), ("retention-seed1", "clip-tiny336-random-1")):
        alone = draw_figure_set(fs, runs / name, tmp_path / name)
        assert alone and all(p.name.startswith(f"retention_{tag}_") for p in alone)
        # in the tree a run folder named other than its figure set is named too: in its files' names and in
        # each figure's corner label (the figure's top rows); the rest of the figure is the same
        in_tree = f"retention_{tag}_" + ("" if name == "retention" else f"{name}_")
        for p in alone:
            drawn = tmp_path / "a" / p.name.replace(f"retention_{tag}_", in_tree, 1)
            if name == "retention":
                assert drawn.read_bytes() == p.read_bytes(), p.name
            elif p.suffix == ".png":
                a, b = (np.asarray(Image.open(x).convert("RGB")) for x in (drawn, p))
                rows = np.nonzero((a != b).any(axis=(1, 2)))[0] if a.shape == b.shape else None
                assert rows is not None and len(rows) and rows.max() < 60, p.name
    assert len([p for p in (tmp_path / "a").iterdir() if not p.name.startswith(".")]) == len(alone) * 2
