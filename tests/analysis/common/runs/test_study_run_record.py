"""One provenance record (``run``) in every study's config.json: command, time, versions, project version,
commit. The command line reaches it as a value (the :class:`~analysis.common.runs.command.Screen` the command
hands the study), never through a module's global."""

from __future__ import annotations

import ast
import datetime
import json
import shlex
from pathlib import Path

import pytest

import litelvlm.cli
from analysis.common.runs import run_record as run_record_module
from analysis.common.runs.run_record import run_record
from analysis.common.runs.study import git_commit
from analysis.retention import RetentionArgs
from analysis.retention import run as run_retention
from litelvlm import __version__
from litelvlm.cli import main
from litelvlm.machine import allocator


def _check(record: dict, command: str | None) -> None:
    assert record["command"] == command
    assert datetime.datetime.fromisoformat(record["written_utc"]).tzinfo is not None
    assert record["litelvlm"] == __version__ and record["versions"]["torch"]
    assert record["git_commit"] is None or len(record["git_commit"].split("+")[0]) == 40
    assert record["torch_threads"] >= 1
    assert record["malloc"] == allocator.in_force()    # what glibc was told (litelvlm.machine.allocator)


def test_record_from_python_names_no_command():
    _check(run_record(None), None)  # a study called from Python, not the CLI
    _check(run_record(("retention", "--out", "a b")), "litelvlm retention --out 'a b'")
    assert git_commit("/") is None  # not a checkout


def test_the_command_line_is_no_module_global():
    """``litelvlm.cli`` keeps no command line for the record to read: ``main`` hands it down with the parsed
    namespace (``Screen.argv``)."""
    assert not hasattr(litelvlm.cli, "CURRENT_ARGV")
    cli_tree = ast.parse(Path(litelvlm.cli.__file__).read_text())
    declared = {name for node in ast.walk(cli_tree) if isinstance(node, ast.Global) for name in node.names}
    assert declared <= {"_DEPTH"}, declared   # the nesting depth of main (WarnOnce), nothing of the command
    record_tree = ast.parse(Path(run_record_module.__file__).read_text())
    imported = {a.name for node in ast.walk(record_tree) if isinstance(node, ast.ImportFrom)
                and node.module == "litelvlm" for a in node.names}
    assert "cli" not in imported


def test_a_command_line_run_records_its_command_and_a_run_from_python_none(coco128, tmp_path):
    """The same study from the command line, then from Python in the same process: the second names no
    command (a module global would still hold the first's)."""
    argv = ["retention", "--budgets", "16", "--methods", "litelvlm", "--limit-images", "1", "--refer-dir",
            str(coco128), "--out", str(tmp_path / "cli")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["run"]["command"] == (
        "litelvlm " + shlex.join(argv))
    assert run_retention(RetentionArgs(budgets=[16], methods=["litelvlm"], limit_images=1,
                                       refer_dir=str(coco128), out=str(tmp_path / "python"))) == 0
    assert json.loads((tmp_path / "python" / "config.json").read_text())["run"]["command"] is None


@pytest.mark.parametrize("argv", [
    ["validate", "--methods", "litelvlm", "--budgets", "32", "--no-figures"],
    ["retention", "--budgets", "16", "--methods", "litelvlm"],
    ["reversal", "--model", "tiny336-random", "--limit-sentences", "6", "--n-boot", "10", "--no-cache"],
    ["sink", "--model", "tiny336-random", "--limit-sentences", "6", "--n-boot", "10", "--no-cache"],
])
def test_every_study_records_its_run(argv, coco128, tmp_path):
    out = tmp_path / "out"
    full = [*argv, "--refer-dir", str(coco128), "--out", str(out)]
    assert main(full) == 0
    cfg = json.loads((out / "config.json").read_text())
    _check(cfg["run"], "litelvlm " + shlex.join(full))
    assert cfg["run"]["malloc"] == ("keep" if allocator.supported() else "unsupported")  # the command's own
    if argv[0] == "validate":  # a rerun resumes: the record is never compared
        assert main(full) == 0
        assert "paths" in cfg and cfg["torch_threads"] >= 1
