"""``figures --smoke`` shows its progress: a bar over the figure sets it makes and draws, beside the line each
prints (issue #67, item 8); with ``--results`` each run group drawn is its own line (``tree.draw_tree``)."""

from __future__ import annotations

import analysis.figures.registry as registry
from litelvlm.cli import main
from tests.analysis.test_figures_cli import _ghost


def test_smoke_shows_a_bar_over_the_figure_sets(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(registry, "FIGURE_SETS", {"ghost": _ghost(), "ghost2": _ghost()})
    assert main(["figures", "--smoke", "--out", str(tmp_path)]) == 0
    assert "figures: 100%" in capsys.readouterr().err
