"""A run owns its ``--out``, across commands: every command that writes an ``--out`` folder refuses one
holding another command's run before torch is imported (naming that command, another ``--out`` and
``--overwrite``); ``--overwrite`` replaces the earlier run whole; a re-run whose commit cannot complete leaves
the earlier run exactly as it was, with a true message; no ``.lock`` is left after a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litelvlm.cli import main
from litelvlm.runs.run_owner import MARKER, STUDY_COMMAND
from litelvlm.runs.transaction import JOURNAL, STAGE_PREFIX
from tests.end_to_end.test_faults import argv

ROOT = Path(__file__).resolve().parents[2]

#: every command that writes an --out folder (``explore`` writes one page, checked as a file)
WRITERS = ["reversal", "sink", "retention", "eval-grounding", "importance", "efficiency", "validate",
           "positions", "eval-video", "demo", "figures", "toy-train", "toy-data"]

#: run in a fresh process: each command's refusal, and whether torch or transformers was imported for it
PROBE = """
import contextlib, io, json, sys
from litelvlm.cli import main
res = []
for command, args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(args)
    res.append([command, rc, err.getvalue(), "torch" in sys.modules or "transformers" in sys.modules])
print(json.dumps(res))
"""


def _command_argv(command: str, coco: Path, out: Path) -> list[str]:
    if command in ("toy-train", "toy-data"):
        return [command, "--out", str(out)]
    return argv(command, coco, out, results=coco)


def _held_by(command: str, out: Path) -> str:
    """Make ``out`` hold a run of another command than ``command`` (by its record or its config.json); returns
    it."""
    other = "eval-grounding" if command != "eval-grounding" else "importance"
    out.mkdir(parents=True)
    if len(command) % 2:   # half the folders by the run record, half by an older config.json
        (out / MARKER).write_text(json.dumps({"command": other, "files": {}, "direct": ["parts"]}))
    else:
        study = {"eval-grounding": "grounding"}.get(other, other)
        (out / "config.json").write_text(json.dumps({"identity": {"study": study, "family": "glamm"}}))
    (out / "notes.txt").write_text("the user's")
    return other


def _refusals(cases: list) -> list[tuple[str, str, bool]]:
    """Run each ``[command, argv]`` of ``cases`` in one fresh process (:data:`PROBE`); each must exit 2 with
    one error line: ``(command, that line, whether torch or transformers was imported)``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = []
    for command, rc, err, loaded in json.loads(done.stdout.splitlines()[-1]):
        lines = [x for x in err.splitlines() if "error" in x]
        assert rc == 2 and len(lines) == 1, (command, err)
        found.append((command, lines[0], loaded))
    return found


@pytest.mark.odd_case("a run owns its --out", "an --out holding another command's run (by its record or its "
                      "config.json)", "every command writing an --out folder",
                      "exit 2 before torch is imported: one line naming that command, another --out and "
                      "--overwrite; the folder untouched")
def test_every_command_refuses_another_commands_folder_before_anything_loads(coco128, tmp_path):
    cases, held = [], {}
    for command in WRITERS:
        out = tmp_path / command
        held[command] = _held_by(command, out)
        cases.append([command, _command_argv(command, coco128, out)])
    for command, line, loaded in _refusals(cases):
        assert f"`litelvlm {held[command]}`" in line and "another --out" in line and "--overwrite" in line
        assert not loaded, f"{command}: torch or transformers was imported before the refusal"
        out = tmp_path / command
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["notes.txt", MARKER if len(command) % 2 else "config.json"]), command


def _reversal(coco: Path, out: Path, sentences: int = 5, *extra: str) -> list[str]:
    return ["reversal", "--model", "tiny336-random", "--refer-dir", str(coco), "--limit-sentences",
            str(sentences),
            "--layers", "2", "--n-boot", "10", "--no-cache", "--out", str(out), "--threads", "1", *extra]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.is_symlink()}


@pytest.mark.odd_case("a run owns its --out", "sink into a folder holding a reversal run; then with "
                      "--overwrite",
                      "sink", "refused naming reversal, the folder untouched; --overwrite replaces the run "
                      "whole (no reversal table left beside sink's), no .lock left")
def test_a_run_of_another_command_is_refused_then_replaced_whole(coco128, tmp_path, capsys):
    out = tmp_path / "runs" / "reversal"
    assert main(_reversal(coco128, out)) == 0
    assert not (out / ".lock").exists()
    before = _files(out)
    (out / "notes.txt").write_text("the user's")
    sink = ["sink", "--model", "tiny336-random", "--refer-dir", str(coco128), "--limit-sentences", "5",
            "--n-boot", "10", "--no-cache", "--out", str(out), "--threads", "1"]
    capsys.readouterr()
    assert main(sink) == 2
    err = capsys.readouterr().err
    assert "`litelvlm reversal`" in err and "--overwrite" in err and "Traceback" not in err
    assert {k: v for k, v in _files(out).items() if k != "notes.txt"} == before
    assert main([*sink, "--overwrite"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "reversal.parquet" not in names and "sink.parquet" in names and "notes.txt" in names, names
    assert ".lock" not in names and not [n for n in names
                                         if n.startswith((STAGE_PREFIX, ".litelvlm-replaced"))]
    assert json.loads((out / MARKER).read_text())["command"] == "sink"
    assert main(
        ["figures", "--figure-set", "reversal", "--results", str(out), "--out", str(tmp_path / "figs")]) == 2


@pytest.mark.odd_case("damaged results", "a re-run into its own --out where the earlier summary.csv became a "
                      "folder (with and without the run's record)", "reversal",
                      "one line naming summary.csv (exit 2); reversal.parquet and config.json still the "
                      "earlier run's; no journal or staging folder left")
@pytest.mark.parametrize("record", [True, False])
def test_a_commit_that_cannot_complete_leaves_the_earlier_run_as_it_was(coco128, tmp_path, capsys, record):
    out = tmp_path / "reversal"
    assert main(_reversal(coco128, out, 5)) == 0
    if not record:   # a folder written before runs were recorded: the commit itself finds the folder
        (out / MARKER).unlink()
    (out / "summary.csv").unlink()
    (out / "summary.csv").mkdir()
    before = _files(out)
    capsys.readouterr()
    assert main(_reversal(coco128, out, 6)) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if "error" in x]
    assert len(lines) == 1 and str(out / "summary.csv") in lines[0] and "Traceback" not in err, err
    assert "nothing partial" not in lines[0] or "nothing was changed" in lines[0]
    assert _files(out) == before and (out / "summary.csv").is_dir()
    assert not [p.name for p in out.iterdir()
                if p.name.startswith((STAGE_PREFIX, JOURNAL, ".litelvlm-replaced"))]


#: the commands that resume: a folder of their own with another configuration is compared before anything
#: loads
RESUMABLE = ["eval-grounding", "importance", "positions", "validate", "eval-video"]


@pytest.mark.odd_case("a run owns its --out", "an --out holding the same command's run of another --model "
                      "and --seed", "eval-grounding, importance, positions, validate, eval-video",
                      "exit 2 before torch is imported, naming --model and --seed, another --out and "
                      "--overwrite")
def test_another_configuration_of_the_same_command_is_refused_before_anything_loads(coco128, tmp_path):
    cases = []
    for command in RESUMABLE:
        out = tmp_path / command
        out.mkdir()
        study = {c: st for st, c in STUDY_COMMAND.items()}.get(command, command)
        (out / "config.json").write_text(json.dumps({"identity": {"study": study, "family": "glamm"},
                                                     "model": "glamm-tiny-random:7", "seed": 12345}))
        cases.append([command, _command_argv(command, coco128, out)])
    for command, line, loaded in _refusals(cases):
        assert "(differs in: --model, --seed)" in line and "--overwrite" in line, line
        assert not loaded, f"{command}: torch or transformers was imported before the refusal"
