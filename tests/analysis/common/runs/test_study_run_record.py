"""One provenance record (``run``) in every study's config.json: command, time, versions, project version,
commit."""

from __future__ import annotations

import datetime
import json

import pytest

from analysis.common.runs.run_record import run_record
from analysis.common.runs.study import git_commit
from litelvlm import __version__
from litelvlm.cli import main


def _check(record: dict, command: str | None) -> None:
    assert record["command"] == command
    assert datetime.datetime.fromisoformat(record["written_utc"]).tzinfo is not None
    assert record["litelvlm"] == __version__ and record["versions"]["torch"]
    assert record["git_commit"] is None or len(record["git_commit"].split("+")[0]) == 40
    assert record["torch_threads"] >= 1


def test_record_from_python_names_no_command(monkeypatch):
    import litelvlm.cli

    monkeypatch.setattr(litelvlm.cli, "CURRENT_ARGV", None)  # a study called from Python, not the CLI
    _check(run_record(), None)
    assert git_commit("/") is None  # not a checkout


@pytest.mark.parametrize("argv", [
    ["validate", "--methods", "litelvlm", "--budgets", "32"],
    ["retention", "--budgets", "16", "--methods", "litelvlm"],
    ["reversal", "--model", "tiny336-random", "--limit-sentences", "6", "--n-boot", "10", "--no-cache"],
    ["sink", "--model", "tiny336-random", "--limit-sentences", "6", "--n-boot", "10", "--no-cache"],
])
def test_every_study_records_its_run(argv, coco128, tmp_path):
    out = tmp_path / "out"
    full = [*argv, "--refer-dir", str(coco128), "--out", str(out)]
    assert main(full) == 0
    cfg = json.loads((out / "config.json").read_text())
    import shlex

    _check(cfg["run"], "litelvlm " + shlex.join(full))
    if argv[0] == "validate":  # a rerun resumes: the record is never compared
        assert main(full) == 0
        assert "paths" in cfg and cfg["torch_threads"] >= 1
