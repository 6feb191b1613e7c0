"""``eval-video --batch-size``: every video family runs one expression per LLM forward, so a larger value runs at
batch 1 and says so once, with the reason, before anything loads."""

from __future__ import annotations

import pytest

from analysis.video.options import VideoArgs, check_args


@pytest.mark.parametrize("model", ["videoglamm-tiny-random:0", "unipixel-tiny-random:0", "sa2va-tiny-random:0"])
def test_eval_video_batch_size_above_one_runs_at_one_and_says_why_once(tmp_path, capsys, model):
    a = VideoArgs(out=str(tmp_path / "video"), model=model, methods=["litelvlm"], budgets=["64"], batch_size=4)
    check_args(a)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 4 runs at batch 1" in err[0]
    assert "VideoGLaMM, " in err[0] and "SAM 2's memory" in err[0]
    assert a.batch_size == 1 and not (tmp_path / "video").exists()
