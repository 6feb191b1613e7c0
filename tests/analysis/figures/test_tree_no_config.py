"""``litelvlm figures --results DIR`` on a folder that holds a figure set's table but no ``config.json`` (a
partial copy, or not a run folder of this project): nothing records its study, family and model, so it is not
drawn, and the command says so on one line naming the folder and the reason, as it does for a folder whose
``config.json`` it cannot read (:mod:`analysis.figures.tree`); asked for that figure set, the error names the
folder too. Checked for every registered figure set's main table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.figures.registry import FIGURE_SETS
from analysis.figures.tree import draw_figure_set
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError


def _table(root: Path, pattern: str) -> Path:
    """Write an empty file at ``root/<pattern>`` (a glob's ``**`` and ``*`` read as one folder ``run``);
    returns its folder."""
    path = root / "copied" / Path(*("run" if part in ("**", "*") else part for part in Path(pattern).parts))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path.parent


@pytest.mark.odd_case("damaged results", "a folder holding a figure set's main table but no config.json, "
                      "under figures --results (every figure set)", "figures",
                      "that folder skipped with one line naming it and the reason (no config.json); asked "
                      "for that figure set, exit 2 naming the same folder and reason")
@pytest.mark.parametrize("name", list(FIGURE_SETS))
def test_a_table_without_config_json_is_skipped_naming_its_folder(name, tmp_path, capsys):
    fs = FIGURE_SETS[name]
    table = fs.results_files[0]
    folder = _table(tmp_path / "res", table)
    out = tmp_path / "figs"
    assert main(["figures", "--results", str(tmp_path / "res"), "--figure-set", name, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    said = [ln for ln in captured.out.splitlines() if ln.startswith(f"figures: skipping {folder}: ")]
    assert len(said) == 1 and f"holds {Path(table).name}" in said[0] and "no config.json" in said[0], said
    error = captured.err.strip()
    assert "\n" not in error and error.startswith("litelvlm figures: error: "), error
    assert str(folder) in error and "no config.json" in error, error
    assert not out.exists()
    with pytest.raises(LiteLVLMError, match="no config.json"):   # the route from code says the same
        draw_figure_set(fs, tmp_path / "res", out)


def test_without_figure_set_each_set_holding_the_table_names_the_skipped_folder(tmp_path, capsys):
    folder = _table(tmp_path / "res", "reversal.parquet")
    assert main(["figures", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "figs")]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert sum(ln.startswith(f"figures: skipping {folder}: it holds reversal.parquet but no config.json")
               for ln in lines) == 1, lines
    for name in ("reversal", "reversal_grid"):   # not "no results": its table is there, unrecorded
        line = next(ln for ln in lines if ln.startswith(f"figures: skipping {name}: "))
        assert str(folder) in line and "no results" not in line, line
    assert next(ln for ln in lines if ln.startswith("figures: skipping sink: ")).startswith(
        f"figures: skipping sink: no results in {tmp_path / 'res'}")


def test_a_table_inside_a_run_folder_is_that_runs(tmp_path, capsys):
    """A table in a subfolder of a folder with a ``config.json`` belongs to that folder's run, which is
    reported on its own (here: a config.json recording no run)."""
    run = tmp_path / "res" / "old"
    _table(run, "official/grounding.parquet")
    (run / "config.json").write_text(json.dumps({"model": "tiny-random"}))
    assert main(["figures", "--results", str(tmp_path / "res"), "--out", str(tmp_path / "figs")]) == 2
    skips = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(f"figures: skipping {run}")]
    assert len(skips) == 1 and skips[0].startswith(f"figures: skipping {run}: its config.json records no "
                                                   "study")
