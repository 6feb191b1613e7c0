"""``positions`` ends with its headline: where the position rule changes the [SEG] states most and least, each
rule's mask IoU with the unpruned model, pad against keep, n (one image, so no interval); ``--quiet`` silences
it."""

from __future__ import annotations

import re

import pytest

from litelvlm.cli import main

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def test_positions_headline(coco128, tmp_path, capsys):
    args = ["positions", "--refer-dir", str(coco128), "--methods", "fastv,visionzip", "--budgets", "16"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    assert lines[-5] == ("positions: keep vs renumber on one image (n = 1 image, no interval), 1 of 2 "
                         "method x budget rows with both rules:")
    assert re.match(r"positions:   largest change fastv K=16 \(\[SEG\] relative difference \d\.\d{4}, "
                    r"mask IoU", lines[-4])
    assert re.match(r"positions:   mask IoU with the unpruned model, .*: keep \d\.\d{3}, renumber \d\.\d{3}$",
                    lines[-3])
    # neither method runs pad (FastV prunes inside the LLM, VisionZip merges tokens)
    assert lines[-2] == ("positions:   pad (PosPad): no row here runs it (it needs single visual tokens "
                         "dropped at the LLM input)")
    assert main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "keep vs renumber" not in quiet and quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
