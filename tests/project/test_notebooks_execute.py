"""CI runs every notebook top to bottom in smoke mode (papermill, this interpreter as the kernel)
and checks that it writes the same bytes as ``litelvlm figures --smoke``."""

from __future__ import annotations

import pytest

from analysis.figures.notebook_run import execute_notebook
from analysis.figures.registry import FIGURE_SETS

READY = [f for f in FIGURE_SETS.values() if not f.missing()]
#: the notebooks the default suite runs: every notebook is generated from one template over its figure_set's
#: functions (tests/project/test_notebooks_stripped.py), so a few light ones stand for the rest, which run
#: with the slow tests; each runs first (``early``: a notebook kernel is the suite's longest single test)
DEFAULT = {"sink"}


@pytest.mark.parametrize("figure_set",
                         [pytest.param(f, marks=pytest.mark.early if f.name in DEFAULT else pytest.mark.slow)
                          for f in READY],
                         ids=lambda f: f.name)
def test_notebook_runs_in_smoke_mode_and_matches_the_command(figure_set, smoke_figures, tmp_path,
                                                             monkeypatch):
    import torch

    # `litelvlm figures --smoke --figure-set NAME`, once per test session
    cli_figures = smoke_figures(figure_set.name)
    # the kernel computes with as many threads as this process did (float sums depend on it)
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    executed = tmp_path / f"{figure_set.notebook}.ipynb"
    paths = execute_notebook(figure_set, None, tmp_path / "figs", smoke=True, executed=executed)
    assert paths, f"{figure_set.notebook} wrote no figures"
    expected = sorted(cli_figures.glob(f"{figure_set.name}_*"))
    assert [p.name for p in paths] == [p.name for p in expected]
    for got, want in zip(paths, expected):
        assert got.read_bytes() == want.read_bytes(), f"{got.name}: notebook and command differ"
    assert b'"output_type": "error"' not in executed.read_bytes()
