"""Damaged files of an earlier run, in every resumable command's folder and under ``figures``: a damaged part
is computed again with a warning, a damaged run record (config.json) or parts record is one line naming it,
and ``figures`` skips a folder it cannot read with one line naming it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from analysis.common.runs.identity import run_identity
from litelvlm.cli import main
from tests.end_to_end.test_faults import argv, different, results

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

RESUMABLE = ["eval-grounding", "importance", "positions", "validate", "eval-video"]


@pytest.mark.odd_case("damaged results", "a garbled part marker, a garbled config.json, a garbled "
                      "parts/config.json (not UTF-8)", "eval-grounding, importance, positions, validate, "
                      "eval-video",
                      "the part computed again with a warning; config.json and parts/config.json one line "
                      "naming the file (exit 2), left as they were")
@pytest.mark.parametrize("command", RESUMABLE)
def test_damaged_files_of_an_earlier_run(command, coco128, tmp_path, capsys, caplog, finished_runs):
    out = finished_runs.copy(lambda o: argv(command, coco128, o), tmp_path / "out")   # a finished run
    clean = results(out)   # the finished run's results, before any damage
    marker = sorted((out / "parts").glob("part-*.json"))[0]
    marker.write_bytes(b"\xff\xfe not a marker")
    with caplog.at_level(logging.WARNING):
        assert main(argv(command, coco128, out)) == 0
    assert any("computed again" in r.getMessage() for r in caplog.records)
    assert not different(results(out), clean)
    whole = (out / "config.json").read_bytes()
    (out / "config.json").write_bytes(b'{"half": ')   # the run's record: named, never rewritten silently
    capsys.readouterr()
    assert main(argv(command, coco128, out)) == 2
    err = capsys.readouterr().err
    assert str(out / "config.json") in err and "damaged" in err and "Traceback" not in err, err
    assert (out / "config.json").read_bytes() == b'{"half": '
    (out / "config.json").write_bytes(whole)
    record = out / "parts" / "config.json"
    record.write_bytes(b"\x89PNG\r\n")
    capsys.readouterr()
    assert main(argv(command, coco128, out)) == 2
    err = capsys.readouterr().err
    assert str(record) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.odd_case("damaged results", "a results folder of an older layout, or with a garbled "
                      "config.json, under figures --results", "figures",
                      "that folder skipped with one line naming it and the reason; the other families drawn")
def test_figures_skip_a_folder_they_cannot_read(coco128, tmp_path, capsys, finished_runs):
    tree = tmp_path / "runs"
    finished_runs.copy(lambda o: argv("reversal", coco128, o), tree / "reversal")   # a finished run
    old = tree / "video"   # an eval-video folder of an older layout: no J&F column, no run identity
    old.mkdir()
    (old / "summary.csv").write_text("method,budget,J,F\nnone,576,0.5,0.5\n")
    (old / "config.json").write_text('{"model": "videoglamm-tiny-random:0"}')
    capsys.readouterr()
    assert main(["figures", "--results", str(tree), "--out", str(tmp_path / "figs")]) == 0
    text = capsys.readouterr()
    assert "Traceback" not in text.err
    line = [x for x in text.out.splitlines() if x.startswith(f"figures: skipping {old}")]
    assert len(line) == 1 and "records no study" in line[0], text.out
    assert any(Path(tmp_path / "figs").rglob("*.png"))
    (old / "config.json").write_text(json.dumps(run_identity("video", "videoglamm-tiny-random:0")))
    assert main(["figures", "--results", str(tree), "--out", str(tmp_path / "figs1")]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith(f"figures: skipping {old}")]
    assert len(line) == 1 and "layout" in line[0] and "(video)" in line[0], line
    (old / "config.json").write_bytes(b"\xff")
    assert main(["figures", "--results", str(tree), "--out", str(tmp_path / "figs2")]) == 0
    assert any(x.startswith(f"figures: skipping {old}: unreadable")
               for x in capsys.readouterr().out.splitlines())
