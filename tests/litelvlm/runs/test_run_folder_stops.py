"""What a stopped run leaves, and the line that says it (:class:`litelvlm.runs.run_folder.RunFolder` and
``litelvlm.cli``): each stop line says what holds for that command and folder (resume, the earlier run kept,
nothing kept); a stop after the commit says the run completed; a stopped fresh run's parts keep their folder
against a different command, refused with one line naming the stopped command and how to resume or replace
it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import litelvlm.cli as cli
from litelvlm.errors import LiteLVLMError
from litelvlm.runs import run_owner
from litelvlm.runs.io import write_json, write_text
from litelvlm.runs.recovery import leftovers
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.run_owner import MARKER, claim, owner, release
from litelvlm.runs.stop_signals import Stopped
from litelvlm.runs.transaction import REPLACED_PREFIX, Transaction


def _stop(out: Path, command: str, parts: bool, **kw) -> Stopped:
    """Run ``command`` into ``out``, writing a part (``parts``) and a staged table, then stop it by
    SIGTERM; returns the Stopped that came out."""
    with pytest.raises(Stopped) as got:
        with RunFolder(out, command=command, **kw):
            if parts:
                write_text(out / "parts" / "part-1.json", "a finished part")
            write_text(out / "summary.csv", "a table of the stopped run")
            raise Stopped(signal.SIGTERM)
    release(out)
    return got.value


def test_a_stopped_fresh_run_keeps_its_parts_and_its_folder_against_another_command(tmp_path):
    out = tmp_path / "fresh"
    stopped = _stop(out, "eval-grounding", parts=True)
    assert "completed parts are kept" in stopped.outcome and "resumes" in stopped.outcome
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        MARKER, "parts/part-1.json"]
    assert owner(out) == "eval-grounding"
    with pytest.raises(LiteLVLMError) as refused:
        claim(out, "sink")
    said = str(refused.value)
    assert "stopped run of `litelvlm eval-grounding`" in said and "this is `litelvlm sink`" in said
    assert "run `litelvlm eval-grounding` again to resume it" in said and "--overwrite" in said
    release(out)
    claim(out, "eval-grounding")   # the same command resumes it, and its commit is an ordinary record
    with RunFolder(out, command="eval-grounding"):
        write_text(out / "summary.csv", "the finished table")
    release(out)
    record = json.loads((out / MARKER).read_text())
    assert "stopped" not in record and set(record["files"]) == {"summary.csv"}


def test_a_stopped_run_without_parts_says_nothing_is_kept(tmp_path):
    stopped = _stop(tmp_path / "new", "toy-train", parts=False, direct=())
    assert not (tmp_path / "new").exists()
    assert "nothing of this run is kept" in stopped.outcome and "re-run" not in stopped.outcome
    out = tmp_path / "held"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    stopped = _stop(out, "toy-train", parts=False, direct=())
    assert "as it was before this run" in stopped.outcome and "re-run" not in stopped.outcome
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_stopped_overwrite_says_the_earlier_run_is_back(tmp_path):
    out = tmp_path / "d"
    with RunFolder(out, command="reversal"):
        write_json(out / "config.json", {"command": "reversal"})
    release(out)
    stopped = _stop(out, "reversal", parts=True, overwrite=True)
    assert stopped.outcome == ("the results folder holds its earlier run, byte for byte: this run replaced "
                               "nothing")


def _top_files(out: Path) -> dict[str, bytes]:
    """The files at the top of ``out`` (its lock aside), byte for byte."""
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"}


def _earlier_reversal(out: Path) -> dict[str, bytes]:
    """A finished reversal run in ``out``: its top files."""
    with RunFolder(out, command="reversal"):
        write_json(out / "config.json", {"command": "reversal"})
    release(out)
    return _top_files(out)


def test_a_stop_while_overwrite_takes_the_folder_says_the_earlier_run_is_back(tmp_path, monkeypatch):
    """SIGTERM just after --overwrite moved the earlier run aside, before the run's body began (inside the
    folder's ``__enter__``, where no ``__exit__`` follows): the same line, the earlier run back."""
    out = tmp_path / "d"
    before = _earlier_reversal(out)
    real = Transaction.replace_earlier

    def stopped(self, names):
        real(self, names)
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(Transaction, "replace_earlier", stopped)
    with pytest.raises(Stopped) as got:
        with RunFolder(out, command="reversal", overwrite=True):
            raise AssertionError("not reached")
    release(out)
    assert got.value.outcome == ("the results folder holds its earlier run, byte for byte: this run replaced "
                                 "nothing")
    assert _top_files(out) == before


def test_a_stop_the_moment_the_replaced_folder_exists_leaves_nothing(tmp_path, monkeypatch):
    """SIGTERM landing as the folder that takes the earlier run aside has just been made (before the run knows
    its name: the window a real SIGTERM hit once in the suite): the earlier run byte for byte, and no empty
    folder of the replaced run left behind."""
    out = tmp_path / "d"
    before = _earlier_reversal(out)
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if os.path.basename(path).startswith(REPLACED_PREFIX):
            raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(Stopped):
        with RunFolder(out, command="reversal", overwrite=True):
            raise AssertionError("not reached")
    monkeypatch.undo()
    release(out)
    assert _top_files(out) == before
    assert not leftovers(out), sorted(p.name for p in out.iterdir())


ARGV = ["reversal", "--model", "tiny336-random", "--limit-sentences", "4", "--n-boot", "10", "--no-cache"]


def test_a_stop_after_the_commit_says_the_run_completed(coco128, tmp_path, monkeypatch, capsys):
    """SIGTERM just after the results were committed (as the folder is let go): exit 143, one line saying the
    run completed, the results complete."""
    def stop(out):
        release(out)
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(run_owner, "release", stop)
    out = tmp_path / "r"
    assert cli.main([*ARGV, "--refer-dir", str(coco128), "--out", str(out)]) == 143
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"litelvlm reversal: stopped by SIGTERM after the run completed; its results are "
                   f"committed in {out}"), err
    assert (out / "config.json").is_file() and "stopped" not in json.loads((out / MARKER).read_text())


def test_a_stop_before_the_results_folder_says_nothing_was_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("analysis.reversal.command.run", lambda args: (_ for _ in ()).throw(
        Stopped(signal.SIGHUP)))
    assert cli.main([*ARGV, "--refer-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 129
    assert capsys.readouterr().err.strip() == ("litelvlm reversal: stopped by SIGHUP before the run wrote "
                                              "anything; nothing of it is kept")


def test_a_signal_after_the_command_returned_says_the_run_completed(tmp_path):
    """The process's last moments (the command returned, the interpreter shutting down): a SIGTERM there
    says the run completed instead of ending the process silently."""
    code = ("import signal, sys\n"
            "import litelvlm.cli as cli\n"
            "cli.after_completion('reversal', sys.argv[1])\n"
            "signal.raise_signal(signal.SIGTERM)\n"
            "print('not reached')\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 143 and "not reached" not in done.stdout
    assert done.stderr.strip() == (f"litelvlm reversal: stopped by SIGTERM after the run completed; its "
                                   f"results are committed in {tmp_path / 'out'}")


def test_a_stopped_toy_train_says_nothing_is_kept(tmp_path, monkeypatch, capsys):
    """toy-train writes no parts: its stop line promises no resume, and its new folder is gone."""
    def stopped(a, work):
        (work / "model.safetensors").parent.mkdir(parents=True, exist_ok=True)
        (work / "model.safetensors").write_bytes(b"half a model")
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr("litelvlm.toy.train._train", stopped)
    out = tmp_path / "toy"
    assert cli.main(["toy-train", "--steps", "2", "--out", str(out)]) == 143
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == ("litelvlm toy-train: stopped by SIGTERM; nothing of this run is kept: it had written no "
                    "part to resume from, and its new folder is removed"), said
    assert not out.exists() and not list(tmp_path.iterdir())
