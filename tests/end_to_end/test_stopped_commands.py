"""Real commands stopped while they replace an earlier run (``--overwrite``): by SIGTERM (what ``kill``,
``timeout`` and job schedulers send) the command rolls back itself; by SIGKILL at a random moment the next
command on the folder finishes or undoes what was left, in one line. Either way the folder then holds the
earlier run byte for byte or a complete new run (every file its record names, with its checksum), and a
different command is refused, naming the run the folder holds."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from litelvlm.cli import main
from litelvlm.runs.recovery import leftovers
from litelvlm.runs.run_owner import MARKER, check_results
from litelvlm.runs.transaction import REPLACED_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def _reversal(coco: Path, out: Path, sentences: int, *extra: str) -> list[str]:
    return ["reversal", "--model", "tiny336-random", "--refer-dir", str(coco), "--limit-sentences",
            str(sentences), "--layers", "2", "--n-boot", "10", "--no-cache", "--out", str(out),
            "--threads", "1", *extra]


def _sink(coco: Path, out: Path) -> list[str]:
    return ["sink", "--model", "tiny336-random", "--refer-dir", str(coco), "--limit-sentences", "5",
            "--n-boot", "10", "--no-cache", "--out", str(out), "--threads", "1"]


def _files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the lock, byte for byte (hidden ones too)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _stop(args: list[str], out: Path, sig: int, delay: float | None = None) -> subprocess.CompletedProcess:
    """Run ``litelvlm ARGS`` in a subprocess and send it ``sig``: once it has moved the earlier run aside, or
    ``delay`` seconds after that (None: at once)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "litelvlm.cli", *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while p.poll() is None and not any(out.glob(f"{REPLACED_PREFIX}*")) and time.monotonic() < deadline:
        time.sleep(0.002)
    if delay:
        time.sleep(delay)
    if p.poll() is None:
        p.send_signal(sig)
    _, err = p.communicate(timeout=240)
    return subprocess.CompletedProcess(args, p.returncode, "", err)


def _one_run(out: Path, before: dict[str, bytes], command: str) -> str:
    """"earlier" when ``out`` holds the earlier run byte for byte, "new" when it holds a complete new run of
    ``command`` (its record's files, each with its checksum, and nothing of the earlier run's beside them)."""
    files = _files(out)
    if files == before:
        return "earlier"
    record = json.loads(files[MARKER])
    check_results(out)   # every file the record names has the bytes it recorded
    named = set(record["files"]) | {MARKER, "notes.txt"}
    assert record["command"] == command and set(files) <= named | {
        f for f in files if f.split("/")[0] in record["direct"]}, sorted(files)
    assert not leftovers(out)
    return "new"


@pytest.fixture
def earlier(coco128, tmp_path, finished_runs) -> tuple[Path, dict[str, bytes]]:
    """A folder holding a finished reversal run (a copy of one made once) and a file of the user's, with its
    files."""
    out = finished_runs.copy(lambda o: _reversal(coco128, o, 5), tmp_path / "runs" / "d")
    (out / "notes.txt").write_text("the user's")
    return out, _files(out)


@pytest.mark.odd_case("a run owns its --out", "SIGTERM (kill, timeout, a scheduler) or SIGHUP while "
                                              "--overwrite has moved the earlier run "
                                              "aside", "reversal (the run machinery of every command)",
                      "exit 128+signal, one line; the earlier run back byte for byte, nothing left; sink "
                      "into "
                      "the folder then refused naming reversal")
@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)],
                         ids=["sigterm", "sighup"])
def test_a_stopped_overwrite_puts_the_earlier_run_back_itself(coco128, earlier, capsys, sig):
    out, before = earlier
    done = _stop(_reversal(coco128, out, 8, "--overwrite"), out, sig)
    assert done.returncode == 128 + sig, done.stderr[-2000:]
    assert f"stopped by {signal.Signals(sig).name}" in done.stderr and "Traceback" not in done.stderr
    # what the line says holds for --overwrite: the earlier run is back, byte for byte
    assert "holds its earlier run, byte for byte: this run replaced nothing" in done.stderr, done.stderr
    assert "re-run resumes" not in done.stderr
    assert _files(out) == before and not leftovers(out)
    capsys.readouterr()
    assert main(_sink(coco128, out)) == 2
    assert "`litelvlm reversal`" in capsys.readouterr().err


@pytest.mark.odd_case("a run owns its --out", "SIGKILL while --overwrite has moved the earlier run aside",
                      "reversal, then sink into the same folder, or figures over it",
                      "the next command first puts the earlier run back and says so in one line; sink then "
                      "refuses it naming reversal (exit 2), figures draws it; the earlier run byte for byte")
@pytest.mark.parametrize("then", ["sink", "figures"])
def test_after_a_killed_overwrite_the_next_command_puts_the_earlier_run_back(coco128, earlier, capsys,
                                                                             caplog, then, tmp_path):
    out, before = earlier
    done = _stop(_reversal(coco128, out, 8, "--overwrite"), out, signal.SIGKILL)
    assert done.returncode == -signal.SIGKILL
    assert any(out.glob(f"{REPLACED_PREFIX}*"))   # what the kill left
    capsys.readouterr()
    if then == "sink":
        assert main(_sink(coco128, out)) == 2
        assert "`litelvlm reversal`" in capsys.readouterr().err
    else:
        figures = tmp_path / "figures"
        assert main(["figures", "--results", str(out.parent), "--out", str(figures)]) == 0
        assert any(figures.rglob("reversal_*.png"))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    said = [m for m in said if "put back" in m]
    assert len(said) == 1 and "put back the earlier run" in said[0] and str(out) in said[0], said
    assert _files(out) == before


@pytest.mark.slow
@pytest.mark.odd_case("a run owns its --out", "SIGKILL at random moments of a real --overwrite run (-m slow)",
                      "reversal", "the folder holds the earlier run byte for byte or a complete new one; "
                                  "sink refused either way")
def test_a_real_overwrite_killed_at_random_moments(coco128, earlier, capsys):
    out, before = earlier
    rng = random.Random(0)
    seen = set()
    for _ in range(8):
        args = _reversal(coco128, out, 8, "--overwrite")
        done = _stop(args, out, signal.SIGKILL, delay=rng.uniform(0, 2.5))
        assert done.returncode in (0, -signal.SIGKILL), done.stderr[-2000:]
        capsys.readouterr()
        assert main(_sink(coco128, out)) == 2   # settles what the kill left, then refuses
        assert "`litelvlm reversal`" in capsys.readouterr().err
        seen.add(_one_run(out, before, "reversal"))
        if seen == {"new"}:
            before = _files(out)
    assert seen
