"""``eval-video --batch-size``: every video family runs one expression per LLM forward, so a larger value is refused
with the reason before anything loads."""

from __future__ import annotations

import pytest

from litelvlm.cli import main


@pytest.mark.odd_case("arguments", "eval-video --batch-size above 1 (no video family batches its expressions)",
                      "eval-video", "exit 2, one line naming the option and why each video family runs one expression "
                      "per LLM forward, before the model loads; --out not created")
@pytest.mark.parametrize("model", ["videoglamm-tiny-random:0", "unipixel-tiny-random:0", "sa2va-tiny-random:0"])
def test_eval_video_batch_size_above_one_is_refused_with_the_reason(tmp_path, capsys, model):
    from tests.fixtures.cli import one_error_line

    out = tmp_path / "video"
    line = one_error_line(main(["eval-video", "--out", str(out), "--model", model, "--batch-size", "4"]),
                          capsys.readouterr().err, "eval-video")
    assert "--batch-size 4" in line and "VideoGLaMM, " in line and "SAM 2's memory" in line
    assert not out.exists()

