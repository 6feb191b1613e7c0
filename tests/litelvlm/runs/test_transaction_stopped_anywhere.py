"""A run stopped at any step of the commit and overwrite protocol leaves its folder holding the earlier run or
the complete new one, byte for byte, and a different command is never accepted over a half-replaced folder.

Each run below is forked into a child process that is stopped at one named step of the protocol
(:func:`litelvlm.runs.transaction.step`): by SIGKILL, which nothing can catch (the next command on the folder
finishes or undoes what it left, :func:`litelvlm.runs.recovery.settle`, saying so in one line), and by SIGTERM
and SIGHUP, which roll the run back in the process itself as Ctrl-C does (or, inside a commit's moves, arrive
once the commit is complete). Every step of every scenario is tried."""

from __future__ import annotations

import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.runs import transaction
from litelvlm.runs.folder_lock import LOCK_NAME
from litelvlm.runs.io import remove_result, write_json, write_text
from litelvlm.runs.recovery import leftovers
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.run_owner import claim, owner, release


def _files(out: Path) -> dict[str, bytes]:
    """Every file and link under ``out`` (hidden ones too, the lock file aside), byte for byte."""
    found = {}
    for root, dirs, files in os.walk(out):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = Path(root) / name
            rel = p.relative_to(out).as_posix()
            if rel != LOCK_NAME:
                found[rel] = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
    return found


def _earlier(out: Path, command: str) -> None:
    """A finished run of ``command`` in ``out`` (with its record), beside a file of the user's."""
    with RunFolder(out, command=command, owned=("extra.csv",), overwrite=False):
        write_text(out / "parts" / "part-1.json", f"{command}'s part 1")
        write_text(out / "summary.csv", f"{command}'s summary")
        write_text(out / "extra.csv", f"{command}'s optional table")
        write_text(out / "images" / "old.png", f"{command}'s image of an example the new run drops")
        write_json(out / "config.json", {"command": command, "n": 1})
    (out / "notes.txt").write_text("the user's own notes")


#: scenario -> (the earlier run's command, the new run's command, --overwrite)
SCENARIOS = {
    "overwrite by another command": ("sink", "reversal", True),
    "overwrite by the same command": ("eval-grounding", "eval-grounding", True),
    "a re-run committing over its own results": ("eval-grounding", "eval-grounding", False),
}
#: the scenario every default run stops with SIGTERM (each step); the other scenarios and SIGHUP: -m slow
FIRST = "overwrite by another command"


def _new_run(out: Path, command: str, overwrite: bool) -> None:
    """The new run: a part of the same name as the earlier run's, a new part, new tables, the optional table
    not written again (dropped at the commit)."""
    with RunFolder(out, command=command, owned=("extra.csv",), overwrite=overwrite) as run:
        transaction.step("the run entered its folder")
        if overwrite:   # a part of the same name as the earlier run's (a resuming run never rewrites one)
            write_text(out / "parts" / "part-1.json", f"new {command}'s part 1")
        write_text(out / "parts" / "part-2.json", f"new {command}'s part 2")
        transaction.step("the run wrote its parts")
        write_text(out / "summary.csv", f"new {command}'s summary")
        write_text(out / "table.parquet", "new table")
        write_json(out / "config.json", {"command": command, "n": 2})
        remove_result(out / "images" / "old.png")   # removed with the commit, never before
        run.drop_stale({"summary.csv", "table.parquet", "config.json"})
        transaction.step("the run staged its results")


def _steps(tmp_path: Path, scenario: str) -> tuple[list[str], dict[str, bytes], dict[str, bytes]]:
    """The steps the new run goes through, the earlier run's files and the new run's (a run not stopped)."""
    before, after = tmp_path / "before", tmp_path / "after"
    earlier, new, overwrite = SCENARIOS[scenario]
    _earlier(before, earlier)
    shutil.copytree(before, after)
    seen: list[str] = []
    transaction.STEP_HOOK = seen.append
    try:
        _new_run(after, new, overwrite)
    finally:
        transaction.STEP_HOOK = None
    return seen, _files(before), _files(after)


def _same(got: dict[str, bytes], earlier: dict[str, bytes], new: dict[str, bytes],
          overwrite: bool) -> str | None:
    """"earlier" or "new" when ``got`` is that run byte for byte, else None. A run that does not overwrite
    keeps the resumable parts it finished (written in place, so that a re-run resumes): there the results must
    be one run's and the parts between the earlier run's and the new run's."""
    if overwrite:
        return "earlier" if got == earlier else "new" if got == new else None
    def results(files):
        return {k: v for k, v in files.items() if not k.startswith("parts/")}
    def parts(files):
        return {k: v for k, v in files.items() if k.startswith("parts/")}
    if not parts(earlier).items() <= parts(got).items() <= parts(new).items():
        return None
    return "earlier" if results(got) == results(earlier) else "new" if results(got) == results(new) else None


def _stopped_at(out: Path, scenario: str, at: int, sig: int) -> int:
    """Run the new run in a forked child that sends itself ``sig`` once step number ``at`` completes; returns
    the child's wait status."""
    _, new, overwrite = SCENARIOS[scenario]
    pid = os.fork()
    if pid == 0:   # the child: never returns into pytest
        code = 0
        try:
            count = iter(range(10_000))

            def hook(name: str) -> None:
                if next(count) == at:
                    os.kill(os.getpid(), sig)

            transaction.STEP_HOOK = hook
            _new_run(out, new, overwrite)
        except KeyboardInterrupt:   # SIGTERM and SIGHUP arrive as Stopped
            code = 3
        except BaseException:   # noqa: BLE001 - anything else fails the test through the exit code
            code = 4
        os._exit(code)
    return os.waitpid(pid, 0)[1]


@pytest.mark.odd_case("a run owns its --out", "SIGKILL at every named step of the commit and overwrite "
                                              "protocol (a forked child stops itself at each "
                                              "step)", "every command writing --out",
                      "the next command on the folder finishes the commit or puts the earlier run back, "
                      "says so "
                      "in one line, then checks; the folder is the earlier run or the new one, byte for byte")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_run_killed_at_any_step_leaves_the_earlier_run_or_the_new_one(tmp_path, scenario, caplog):
    steps, earlier, new = _steps(tmp_path, scenario)
    assert len(steps) >= 8 and earlier != new
    outcomes = set()
    for at, name in enumerate(steps):
        out = tmp_path / f"killed-{at}"
        _earlier(out, SCENARIOS[scenario][0])
        status = _stopped_at(out, scenario, at, signal.SIGKILL)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (name, status)
        left = {n for n in os.listdir(out) if n == transaction.JOURNAL
                or n.startswith(transaction.REPLACED_PREFIX)}
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="litelvlm.runs.recovery"):
            with pytest.raises(LiteLVLMError, match="holds a run of"):   # never accepted over the folder
                claim(out, "positions")
        release(out)
        got = _files(out)
        outcome = _same(got, earlier, new, SCENARIOS[scenario][2])
        assert outcome, f"killed after step {at} ({name}): {sorted(got)}"
        outcomes.add(outcome)
        said = [r.getMessage() for r in caplog.records]
        # one line when the kill left a commit or a replaced run, naming the folder; silence otherwise
        assert len(said) == (1 if left else 0), (name, said)
        assert all(repr(str(out)) in line for line in said)
        assert owner(out) == (SCENARIOS[scenario][1] if outcome == "new" else SCENARIOS[scenario][0])
    assert outcomes == {"earlier", "new"}


@pytest.mark.odd_case("a run owns its --out", "SIGTERM or SIGHUP at every named step of the commit and "
                                              "overwrite protocol", "every command writing --out",
                      "rolled back in the process as Ctrl-C is (or, inside the commit's moves, delivered "
                      "once it "
                      "is complete): the folder is the earlier run or the new one, byte for byte, nothing "
                      "left")
@pytest.mark.parametrize(("scenario", "sig"), [
    pytest.param(s, sig, id=f"{s}-{name}",
                 marks=() if (s, sig) == (FIRST, signal.SIGTERM) else pytest.mark.slow)
    for s in SCENARIOS for sig, name in ((signal.SIGTERM, "sigterm"), (signal.SIGHUP, "sighup"))])
def test_a_run_stopped_by_sigterm_or_sighup_at_any_step_rolls_back_itself(tmp_path, scenario, sig):
    steps, earlier, new = _steps(tmp_path, scenario)
    for at, name in enumerate(steps):
        out = tmp_path / f"stopped-{at}"
        _earlier(out, SCENARIOS[scenario][0])
        status = _stopped_at(out, scenario, at, sig)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, (name, status)   # it saw Stopped
        got = _files(out)   # no later command needed: the process itself rolled back
        outcome = _same(got, earlier, new, SCENARIOS[scenario][2])
        assert outcome, f"stopped after step {at} ({name}): {sorted(got)}"
        assert not leftovers(out)
        if "journal written" not in steps[: at + 1]:
            assert outcome == "earlier", name   # stopped before the commit began: the earlier run, whole


def test_what_a_running_run_left_is_its_own_and_a_second_run_is_refused_at_the_lock(tmp_path):
    out = tmp_path / "out"
    _earlier(out, "sink")
    aside = out / f"{transaction.REPLACED_PREFIX}x"   # as a running --overwrite run has it
    aside.mkdir()
    (out / "summary.csv").rename(aside / "summary.csv")
    from litelvlm.runs.folder_lock import FolderLock

    with FolderLock(out):   # the running run
        pid = os.fork()
        if pid == 0:
            code = 7
            try:
                claim(out, "sink")   # a shard of the running run: goes on, nothing settled under it
                code = 5 if aside.is_dir() else 6
                with RunFolder(out, command="sink", overwrite=False):   # a second run: refused
                    code = 8
            except LiteLVLMError as e:
                code += 10 if "in use by another run" in str(e) else 20
            except BaseException:   # noqa: BLE001
                code = 9
            os._exit(code)
        assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 15
    assert (aside / "summary.csv").exists()
