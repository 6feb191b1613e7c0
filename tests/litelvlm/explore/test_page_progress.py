"""``explore`` shows its progress: a bar over the methods whose selections (and masks) it computes (issue #67,
item 8)."""

from __future__ import annotations

from litelvlm.cli import main
from litelvlm.explore.notebook import sample_image
from litelvlm.toy import default_model_path


def test_explore_shows_a_bar_over_its_methods(tmp_path, capsys):
    image, texts = sample_image(tmp_path / "data")
    out = tmp_path / "page.html"
    assert main(["explore", "--image", image, "--text", texts[0], "--model", str(default_model_path()),
                 "--methods", "litelvlm,random", "--budgets", "9,1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "explore: selections: 100%" in err and "2/2" in err, err
