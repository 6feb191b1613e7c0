"""Figure-set names a user can guess: each is named after the study whose runs it draws (``validate`` runs
under ``validate``, a grounding run of any family under a name starting ``grounding``), ``figures --help``
names every one, and an earlier name is still accepted with a line naming the new one."""

from __future__ import annotations

from analysis.figures import registry
from analysis.figures.compute import selected
from analysis.figures.options import FiguresArgs
from litelvlm.cli import main


def test_every_figure_set_is_named_after_the_study_it_draws():
    for name, fs in registry.FIGURE_SETS.items():
        if name in registry.CROSS_STUDY:
            assert len(fs.studies) > 1, name
            continue
        assert any(name == s or name.startswith(f"{s}_") for s in fs.studies), (name, fs.studies)


def test_figures_help_names_every_figure_set(capsys):
    assert main(["figures", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    missing = [n for n in registry.FIGURE_SETS if f" {n}" not in shown]
    assert not missing, missing
    assert "named after the study" in shown


def test_an_earlier_name_is_accepted_and_named(capsys, tmp_path):
    assert set(registry.RENAMED.values()) <= set(registry.FIGURE_SETS)
    assert not set(registry.RENAMED) & set(registry.FIGURE_SETS)
    for old, new in registry.RENAMED.items():
        assert selected(FiguresArgs(results=str(tmp_path), figure_set=[old])) == [new]
        assert f"--figure-set {old} is now {new}" in capsys.readouterr().out
