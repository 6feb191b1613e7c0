"""``eval-video`` shows its progress: one bar over the parts it computes (a video x method x budget),
naming the part running (issue #67, item 8)."""

from __future__ import annotations

from litelvlm.cli import main
from tests.analysis.video.test_compute_budgets import fake  # noqa: F401 - the fixture


def test_eval_video_shows_a_bar_over_its_parts(tmp_path, fake, capsys):  # noqa: F811 - the fixture
    argv = ["eval-video", "--out", str(tmp_path / "video"), "--anno-sets", "0", "--synthetic-videos", "1",
            "--synthetic-frames", "3", "--methods", "litelvlm", "--budgets", "196", "--n-boot", "10"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "eval-video: 100%" in err and "2/2" in err, err
