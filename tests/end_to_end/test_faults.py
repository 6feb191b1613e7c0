"""Faults at every write, over every command that writes results: a full disk, a permission error and a kill.

The fixture :func:`faults` counts the writes of a run (every write of the project ends in
``litelvlm.runs.transaction.replace``) and makes write number ``n`` fail. After the fault:

* a full disk or a permission error is one line naming the cause, exit 2, no temporary file left;
* a kill (a BaseException nothing in the project catches, as SIGKILL would be) leaves whatever it leaves;
* in every case the folder's results are those of before the run, byte for byte, or, where the kill came
  during the final commit, complete after the next run opens the folder (its journal is rolled forward);
* a re-run finishes, and its tables equal those of a run that met no fault.

The default suite tries a full disk at the first write, a permission error at a middle one and a kill at the
last write (the commit's final move) of a re-run into a finished folder, for each command (only the kill for
the three slowest); ``-m slow`` tries every fault at every write.
:func:`test_a_second_run_on_a_busy_folder_is_refused_for_every_command` is the concurrency test of every
command, and the two-process test runs the case that used to double-count.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import litelvlm.runs.transaction as transaction
from litelvlm.cli import main
from litelvlm.runs.run_folder import LOCK_NAME, RunFolder
from litelvlm.runs.run_owner import MARKER

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

VIDEO = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11",
         "--methods", "litelvlm", "--budgets", "81"]


def argv(command: str, coco: Path, out: Path, results: Path | None = None) -> list[str]:
    """A small run of ``command`` into ``out``."""
    clip = ["--model", "tiny336-random", "--refer-dir", str(coco), "--limit-sentences", "6", "--n-boot", "10",
            "--no-cache"]
    return {
        "reversal": ["reversal", *clip],
        "sink": ["sink", *clip],
        "retention":
        ["retention", "--refer-dir", str(coco), "--limit-images", "1", "--budgets", "16", "--methods",
                      "litelvlm"],
        "eval-grounding":
        ["eval-grounding", "--refer-dir", str(coco), "--limit-images", "2", "--methods", "none",
                           "--chunk", "1"],
        "importance": ["importance", "--refer-dir", str(coco), "--limit-images", "2", "--max-sentences", "1",
                       "--signals", "attention", "--no-per-head", "--n-boot", "20"],
        "efficiency":
        ["efficiency", "--arch", "tiny", "--flops-only", "--budgets", "16", "--methods", "litelvlm",
                       "--no-figures"],
        # --no-figures: the figures' files are compared by presence only (TIMED); their PDF fonts cost most
        "validate": ["validate", "--refer-dir", str(coco), "--methods", "litelvlm", "--budgets", "32",
                     "--no-figures"],
        "positions": ["positions", "--refer-dir", str(coco), "--methods", "random", "--budgets", "16"],
        "eval-video": ["eval-video", *VIDEO],
        "demo": ["demo", "--smoke"],
        "figures": ["figures", "--results", str(results), "--figure-set", "reversal"],
    }[command] + ["--out", str(out)]


#: the slowest commands to run (seconds a run): the default suite tries only the kill during their commit
HEAVY = ("demo", "efficiency", "eval-video")
COMMANDS = ["reversal", "sink", "retention", "eval-grounding", "importance", "efficiency", "validate",
            "positions", "eval-video", "demo", "figures"]
#: the heaviest commands' single-fault case runs with the slow tests (every command's every-write faults are
#: slow too); the commit machinery they share is the same RunFolder the other nine commands exercise by
#: default
SLOW_ONE_FAULT = ("demo", "figures", "sink", "retention")   # the default keeps reversal beside sink
#: what a run writes that differs between two identical runs (its provenance and timings)
VOLATILE = ("run", "seconds", "torch_threads", "busy", "paths", "out", "written_utc")
#: folders of resumable work and the lock: written in place as a run goes, kept after a fault
KEPT = ("parts", "rounds", "images", "reference.safetensors", LOCK_NAME)
#: result files whose content holds measured times (validate's): compared by presence only
TIMED = ("validate.csv", "validate.parquet", "ratios.csv", "report.md", "checks.csv", "memory.csv",
         "stages.csv", "stages.png", "amdahl.csv", "amdahl.png")


class Killed(BaseException):
    """What a kill looks like from inside: nothing in the project catches it."""


def results(out: Path) -> dict[str, bytes]:
    """The result files of ``out`` (resumable work and the lock aside), config.json without its volatile
    keys."""
    res = {}
    for p in sorted(out.rglob("*")) if out.is_dir() else []:
        rel = p.relative_to(out)
        if p.is_dir() or rel.parts[0] in KEPT or rel.parts[0].startswith(transaction.STAGE_PREFIX) \
                or p.name.endswith(transaction.TMP_SUFFIX) or rel.name in (transaction.JOURNAL, MARKER):
            continue
        data = b"<timed>" if p.name in TIMED else p.read_bytes()
        if p.suffix in (".json", ".md", ".txt", ".csv"):
            data = data.replace(str(out).encode(), b"<out>")
        if p.suffix == ".json":
            data = json.dumps(_stable(json.loads(data)), sort_keys=True).encode()
        res[rel.as_posix()] = data
    return res


def _stable(obj):
    """``obj`` without the keys that differ between two identical runs in two folders."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE and not k.startswith("seconds")}
    return [_stable(v) for v in obj] if isinstance(obj, list) else obj


def different(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    """The files that differ, with the first differing line of each."""
    res = []
    for k in sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)):
        la, lb = (x.get(k, b"").decode("utf-8", "replace").replace(", ", ",\n").splitlines() for x in (a, b))
        first = next((f"{p!r} != {q!r}" for p, q in zip(la, lb) if p != q), f"{len(la)} != {len(lb)} lines")
        res.append(f"{k}: {first[:300]}")
    return res


@pytest.fixture
def faults(monkeypatch):
    """``faults.arm(out, n, kind)``: write number ``n`` (1-based) into ``out`` of what follows fails with
    ``kind`` (``enospc``, ``eacces`` or ``kill``); ``faults.count``: the writes into ``out`` seen so far."""
    real = transaction.replace

    class Faults:
        count, at, kind, root = 0, None, None, None

        def arm(self, root: Path, n: int | None, kind: str | None = None) -> None:
            """Count the writes into ``root`` from now on; write ``n`` fails with ``kind``."""
            self.root, self.count, self.at, self.kind = Path(os.path.abspath(root)), 0, n, kind

        def replace(self, src, dst) -> None:
            if self.root is None or self.root not in Path(os.path.abspath(dst)).parents:
                return real(src, dst)   # the model cache, a demo's work folder: not the run's results
            self.count += 1
            if self.count == self.at:
                if self.kind == "enospc":
                    raise OSError(errno.ENOSPC, "No space left on device")
                if self.kind == "eacces":
                    raise PermissionError(errno.EACCES, "Permission denied", str(dst))
                raise Killed()
            real(src, dst)

    f = Faults()
    monkeypatch.setattr(transaction, "replace", f.replace)
    return f


@pytest.fixture
def reversal_results(coco128, tmp_path, finished_runs) -> Path:
    """A copy of a finished reversal run (the one the reversal tests make, where one did), for ``figures`` to
    draw."""
    return finished_runs.copy(lambda out: argv("reversal", coco128, out), tmp_path / "reversal-results")


def results_for(command: str, request) -> Path | None:
    """The ``--results`` of ``command``: :func:`reversal_results` for ``figures``, the one command that reads
    a finished run; none (and no run made) for the others."""
    return request.getfixturevalue("reversal_results") if command == "figures" else None


def _clean(command: str, coco: Path, where: Path, faults, results_dir: Path) -> tuple[dict, int]:
    """The results of a run that meets no fault, and how many writes it makes."""
    faults.arm(where, None)
    assert main(argv(command, coco, where, results_dir)) == 0
    assert not (where / LOCK_NAME).exists(), "the lock file outlived its run"
    return results(where), faults.count


def _counted(command: str, coco: Path, prior: Path, where: Path, faults, results_dir: Path) -> int:
    """How many writes a run makes into a copy of the finished folder ``prior`` (a resumed run writes
    fewer)."""
    shutil.copytree(prior, where)
    faults.arm(where, None)
    assert main(argv(command, coco, where, results_dir)) == 0
    return faults.count


def _one_fault(command, kind, n, coco, tmp_path, faults, results_dir, clean, prior: Path | None, capsys):
    out = tmp_path / f"{kind}-{n}"
    if prior is not None:   # a folder holding a finished run of the same command
        shutil.copytree(prior, out)
        (out / LOCK_NAME).unlink(missing_ok=True)
    before = results(out)
    faults.arm(out, n, kind)
    capsys.readouterr()
    if kind == "kill":
        with pytest.raises(Killed):
            main(argv(command, coco, out, results_dir))
    else:
        assert main(argv(command, coco, out, results_dir)) == 2
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if "error" in x]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert ("No space left" if kind == "enospc" else "Permission denied") in lines[0]
        assert not list(out.rglob(f"*{transaction.TMP_SUFFIX}")) if out.exists() else True
    if transaction.pending(out):   # killed during the commit's moves: the next run finishes that commit
        transaction.recover(out)
        assert not different(results(out), clean), f"write {n}: not rolled forward"
    else:
        assert not different(results(out), before), f"write {n} ({kind}): results changed: " \
            f"{different(results(out), before)}"
    faults.arm(out, None)
    assert main(argv(command, coco, out, results_dir)) == 0
    assert not (bad := different(results(out),
                                 clean)), f"after a fault at write {n} ({kind}), the re-run differs: {bad}"


@pytest.mark.odd_case("faults", "a full disk at the first write, a permission error at a middle one, a kill "
                      "at the last (the commit's final move) of a re-run; every fault at every write with -m "
                      "slow", "every command that writes results",
                      "one line naming the cause (exit 2) or the kill; results as before, or completed by "
                      "the next run; a re-run equals a clean run")
@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW_ONE_FAULT else c
                                     for c in COMMANDS])
def test_a_fault_at_a_write_leaves_the_results_whole(command, coco128, tmp_path, faults, request, capsys,
                                                     finished_runs):
    reversal_results = results_for(command, request)
    clean, total = _clean(command, coco128, tmp_path / "clean", faults, reversal_results)
    finished_runs.remember(lambda out: argv(command, coco128, out, reversal_results), tmp_path / "clean")
    again = _counted(command, coco128, tmp_path / "clean", tmp_path / "again", faults, reversal_results)
    assert total >= 2 and again >= 2 and clean
    cases = [(1, "enospc", None), ((total + 1) // 2, "eacces", None), (again, "kill", tmp_path / "clean")]
    for n, kind, prior in cases[2:] if command in HEAVY else cases:   # the rest of a heavy command's: -m slow
        _one_fault(command, kind, n, coco128, tmp_path / f"w{n}", faults, reversal_results, clean, prior,
                   capsys)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["enospc", "eacces", "kill"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fault_at_every_write_leaves_the_results_whole(command, kind, coco128, tmp_path, faults, request,
                                                         capsys):
    reversal_results = results_for(command, request)
    clean, total = _clean(command, coco128, tmp_path / "clean", faults, reversal_results)
    again = _counted(command, coco128, tmp_path / "clean", tmp_path / "again", faults, reversal_results)
    for prior, writes in ((None, total), (tmp_path / "clean", again)):
        for n in range(1, writes + 1):
            _one_fault(command, kind, n, coco128, tmp_path / f"w{n}-{prior is None}", faults,
                       reversal_results, clean, prior, capsys)


@pytest.mark.odd_case("concurrency", "a second run on an --out another run holds",
                      "every command that writes results",
                      "refused at once (exit 2, one line naming the folder and the holder); the folder "
                      "untouched")
@pytest.mark.parametrize("command", COMMANDS)
def test_a_second_run_on_a_busy_folder_is_refused_for_every_command(command, coco128, tmp_path, request,
                                                                    capsys):
    reversal_results = results_for(command, request)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    with RunFolder(out):
        assert main(argv(command, coco128, out, reversal_results)) == 2
    err = capsys.readouterr().err
    assert "in use by another run" in err and str(out) in err and "pid" in err
    assert {p.name for p in out.iterdir()} == {"notes.txt"}   # untouched, and the lock gone with its run


@pytest.mark.slow
@pytest.mark.odd_case("concurrency", "two eval-video processes on one --out at once (-m slow)",
                      "eval-video x2",
                      "one finishes, the other is refused; no part written twice, the summary counts each "
                      "object once")
def test_two_eval_video_processes_on_one_folder_never_double_count(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "litelvlm.cli", *argv("eval-video", Path("."), out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    assert sorted(codes) in ([0, 0], [0, 2]), [p.stderr.read()[-2000:] for p in procs]
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    markers = list((out / "parts").glob("part-*.json"))
    assert len(markers) == len({json.loads(m.read_text())["ids"][0] for m in markers})
    alone = tmp_path / "alone"
    assert main(argv("eval-video", Path("."), alone)) == 0
    assert summary.equals(pd.read_csv(alone / "summary.csv"))
