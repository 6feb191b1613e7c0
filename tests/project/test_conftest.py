"""The suite's own settings (``tests/conftest.py``): a test marked ``early`` (many seconds of wall time on its
own) is collected first, so xdist hands it out at the start instead of leaving one worker alone at the end
while the other runs it; the cycle collector, off during collection, is on again for the tests."""

from __future__ import annotations

import gc

from tests.project import test_notebooks_execute as notebooks


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
