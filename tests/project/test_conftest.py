"""The suite's own settings (``tests/__init__.py``, ``tests/conftest.py``): a test marked ``early`` (many
seconds of wall time on its own) is collected first, so xdist hands it out at the start instead of leaving one
worker alone at the end while the other runs it; the cycle collector, off during collection, is on again for
the tests; an xdist worker ends after its exit handlers without the interpreter's teardown, its heap frozen
first; the xdist controller, which runs no test, never imports torch."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.project import test_notebooks_execute as notebooks

ROOT = Path(__file__).resolve().parents[2]


def test_early_tests_are_collected_before_every_other(request):
    early = [item.get_closest_marker("early") is not None for item in request.session.items]
    assert early == sorted(early, reverse=True), "a test marked early comes after one that is not"


def test_the_notebook_run_of_the_default_suite_is_early():
    (parametrize,) = [m for m in notebooks.test_notebook_runs_in_smoke_mode_and_matches_the_command.pytestmark
                      if m.name == "parametrize"]
    marks = {p.values[0].name: {m.name for m in p.marks} for p in parametrize.args[1]}
    default = {name for name, names in marks.items() if "slow" not in names}
    assert default == notebooks.DEFAULT
    assert all("early" in marks[name] for name in default), marks


def test_the_collector_runs_during_the_tests_and_skips_what_collection_left():
    assert gc.isenabled()
    assert gc.get_freeze_count() > 10_000   # the modules, fixtures and test items of the session


def test_a_process_importing_the_suite_outside_pytest_keeps_its_collector():
    out = subprocess.run([sys.executable, "-c", "import gc, tests; print(gc.isenabled())"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


#: how the child below ends (its last lines; how many of its processes tore down; its exit status): as a
#: marked xdist worker, as another process importing the suite with the worker's variable inherited, or as a
#: marked worker whose forked process exits with a status of its own (written to the file "status")
FORK = ("if os.fork() == 0:\n    sys.exit(3)\n"
        "open(os.path.join(OUT, 'status'), 'w').write(str(os.waitstatus_to_exitcode(os.wait()[1])))")
ENDINGS = {
    "xdist worker": ("tests.end_as_worker()", 0, 0),
    "another process with the worker's variable": ("sys.exit(4)", 1, 4),
    "a marked worker's fork exiting with 3": ("tests.end_as_worker()\n" + FORK, 1, 0),
}


@pytest.mark.parametrize("ending", ENDINGS)
def test_only_a_worker_ends_after_its_exit_handlers_without_the_teardown(tmp_path, ending):
    code, teardowns, status = ENDINGS[ending]
    script = f"""
import atexit, os, sys
import tests

OUT = {str(tmp_path)!r}

class Freed:
    def __del__(self, _open=open, _pid=os.getpid, _join=os.path.join):   # bound here: builtins may be gone
        _open(_join(OUT, f"teardown-{{_pid()}}"), "w").close()

freed = Freed()   # freed in the interpreter's teardown
atexit.register(lambda: open(os.path.join(OUT, f"handler-{{os.getpid()}}"), "w").close())
{code}
"""
    env = os.environ | {"PYTEST_XDIST_WORKER": "gw9"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env)
    assert out.returncode == status
    assert len(list(tmp_path.glob("handler-*"))) == 1 + ("fork" in ending)   # every exit handler ran
    assert len(list(tmp_path.glob("teardown-*"))) == teardowns
    if "fork" in ending:
        assert (tmp_path / "status").read_text() == "3"


#: a process playing the parts named in ROLES for the conftest's hooks, in order: whether it has imported
#: torch and with how many threads; then whether the session's end froze what it left
ROLE_SCRIPT = """
import gc, sys, types
import tests.conftest as conftest

for dist, worker in {roles!r}:
    config = types.SimpleNamespace(option=types.SimpleNamespace(dist=dist),
                                   getoption=lambda name, default=None: None)
    if worker:
        config.workerinput = {{"workerid": "gw0"}}
    conftest.pytest_configure(config)
    print("torch" in sys.modules, sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None)
leftover = [[i] for i in range(1000)]
frozen = gc.get_freeze_count()
conftest.pytest_sessionfinish(types.SimpleNamespace(config=config))
print(gc.get_freeze_count() - frozen >= 1000)
"""
#: (dist, an xdist worker) for each part one process plays, and what it prints
ROLES = {"xdist controller": ([("load", False)], "False None\nFalse"),
         "one process, no xdist, then an xdist worker": ([("no", False), ("load", True)],
                                                         "True {}\nTrue 1\nTrue")}


@pytest.mark.parametrize("role", ROLES)
def test_only_a_process_that_runs_tests_imports_torch_and_a_worker_ends_with_its_heap_frozen(role):
    """The controller runs no test: no torch (its workers start sooner). A worker ends without teardown, so
    what it leaves is frozen at the session's end and pytest's closing collections walk no heap."""
    roles, expected = ROLES[role]
    script = ROLE_SCRIPT.format(roles=roles)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == expected.format(max(1, min(2, os.cpu_count() or 1)))
