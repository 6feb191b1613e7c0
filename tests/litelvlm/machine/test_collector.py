"""Python's cycle collector run rarer while a ``litelvlm`` command runs (``litelvlm.machine.collector``): the
thresholds in force inside, the caller's own restored afterwards (also after an error), and the command's run
wrapped in it; paused inside a timed call, and enabled again after it."""

from __future__ import annotations

import contextlib
import gc

import pytest

from litelvlm import cli
from litelvlm.machine import collector


def test_rarer_inside_and_the_callers_own_after_even_on_error():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with collector.rarer_collection():
            assert gc.get_threshold() == collector.THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
        with pytest.raises(RuntimeError), collector.rarer_collection():
            raise RuntimeError("the command failed")
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_the_command_runs_inside_it(monkeypatch):
    seen = []

    @contextlib.contextmanager
    def spy():
        seen.append("enter")
        yield
        seen.append("exit")

    monkeypatch.setattr(cli, "rarer_collection", spy)
    assert cli.main(["select", "--list-methods"]) == 0
    assert seen == ["enter", "exit"]


def test_paused_inside_and_enabled_after_even_on_error():
    enabled = gc.isenabled()
    gc.enable()
    try:
        with collector.paused_collection():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError), collector.paused_collection():
            raise RuntimeError("the timed call failed")
        assert gc.isenabled()
    finally:
        if not enabled:
            gc.disable()
