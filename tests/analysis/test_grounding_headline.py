"""``eval-grounding`` ends with its headline: cIoU/gIoU per method and budget, the unpruned model first and
each budget's best method first, with intervals over images and n; ``summary.txt`` says what n, units and
``±mc`` are; ``--quiet`` silences the headline (the random-weights banner stays)."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.cli import run_grounding

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

#: a figure without an interval, and why
NONE = r"0\.\d{3} \(n = 3 images, no interval\)"


def test_grounding_headline_and_summary_notes(coco128, tmp_path, capsys):
    args = ["--limit-images", "3", "--methods", "none,litelvlm,fastv", "--budgets", "16,8", "--n-boot", "50"]
    assert run_grounding(coco128, tmp_path / "a", *args) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    at = next(i for i, line in enumerate(lines) if "cIoU / gIoU per method and budget" in line)
    assert re.search(r"n = \d+ sentences on 3 images", lines[at])
    head = lines[at + 1:-1]
    assert len(head) == 4 and head[0].startswith("eval-grounding:   none (every token): cIoU ")
    assert head[1].startswith("eval-grounding:   K=16: ") and head[2].startswith("eval-grounding:   K=8: ")
    # 3 images: the paired test cannot reach p < 0.05, so no mark can appear, and the line says why
    assert head[3] == ("eval-grounding:   no difference can be marked: n = 3 images, fewer than the paired "
                       "test's 6 (its smallest p is 2 / 2^n)"), head[3]
    # 3 images: too many draws repeat one image for a bootstrap-t, so no interval, and the line says why
    assert re.search(f"cIoU {NONE} / gIoU {NONE}", head[1]), head
    values = [float(v) for v in re.findall(r"(?:fastv|litelvlm) cIoU (0\.\d{3})", head[1])]
    assert len(values) == 2 and values == sorted(values, reverse=True)   # the best first
    text = (tmp_path / "a" / "summary.txt").read_text()
    assert "±mc: the Monte Carlo error" in text and "n: the sentences scored; units: the images" in text
    # --quiet on the finished folder (a resume: nothing left to score, the same tables and headline)
    assert run_grounding(coco128, tmp_path / "a", *args, "--quiet") == 0
    quiet = capsys.readouterr().out
    assert "per method and budget (best first" not in quiet and "K=16" not in quiet
    assert quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
