"""The suite's own settings (``tests/__init__.py``, ``tests/conftest.py``): a test marked ``early`` (many
seconds of wall time on its own) is collected first, so xdist hands it out at the start instead of leaving one
worker alone at the end while the other runs it; the cycle collector, off during collection, is on again for
the tests; an xdist worker ends after its exit handlers without the interpreter's teardown."""

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


@pytest.mark.parametrize("worker", ["gw9", None], ids=["xdist worker", "any other process"])
def test_a_worker_ends_after_its_exit_handlers_without_the_teardown(tmp_path, worker):
    script = f"""
import atexit
import tests

class Freed:
    def __del__(self, _open=open):   # builtins may be gone by then: bound here
        _open({str(tmp_path / "teardown")!r}, "w").close()

freed = Freed()   # freed in the interpreter's teardown
atexit.register(lambda: open({str(tmp_path / "handler")!r}, "w").close())
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"} | (
        {"PYTEST_XDIST_WORKER": worker} if worker else {})
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True)
    assert (tmp_path / "handler").exists()
    assert (tmp_path / "teardown").exists() == (worker is None)
