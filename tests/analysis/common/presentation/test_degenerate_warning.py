"""A degenerate result is said on screen: where a command scores masks (``eval-grounding``, ``eval-video``,
``validate``), a run whose every mask is empty gets one WARNING line naming the model and the run folder
(``analysis.common.presentation.degenerate``); a run with masks gets none. ``unipixel-tiny-random:0`` is such
a model: SAM 2's object-score gate of its random weights is closed (the documented default seed, 5, opens
it)."""

from __future__ import annotations

import logging

import pytest

from litelvlm.cli import main

CLOSED, OPEN = "unipixel-tiny-random:0", "unipixel-tiny-random:5"
VIDEO = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11",
         "--methods", "litelvlm", "--budgets", "8"]


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "measure nothing" in r.getMessage()]


def _argv(command: str, model: str, out, coco) -> list[str]:
    if command == "eval-video":
        return ["eval-video", "--model", model, "--out", str(out), *VIDEO]
    extra = ["--repeats", "1"] if command == "validate" else ["--limit-images", "1"]
    return [command, "--model", model, "--refer-dir", str(coco), "--out", str(out), "--methods", "random",
            "--budgets", "8", "--threads", "1", *extra]


@pytest.mark.parametrize("command", ["eval-grounding", "validate", "eval-video"])
def test_a_run_of_empty_masks_gets_one_warning_line_naming_model_and_run(command, coco128, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "closed"
    assert main(_argv(command, CLOSED, out, coco128)) in (0, 1)   # validate: 1 when a check fails
    lines = _warnings(caplog)
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith(f"{command}: ") and f"model {CLOSED}" in lines[0] and f"run {out}" in lines[0]
    assert "another seed may open it" in lines[0]   # random weights: the likely cause


def test_a_run_with_masks_gets_no_warning(coco128, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    assert main(_argv("eval-grounding", OPEN, tmp_path / "open", coco128)) == 0
    assert _warnings(caplog) == []
