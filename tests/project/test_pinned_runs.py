"""The official sides' pinned environments (``tests/pinned_env.py``) cost their install once and their
bytecode once: pip installs a pin's packages without compiling every module (most of transformers is never
imported by a pinned script), and a pinned run keeps the bytecode of what it imports under the pinned folder
(and nowhere else), so the next run reads it instead of compiling again. The server the pinned runs are
forked from ends, when its test process closes it, without tearing down what it imported."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import tests.pinned_env as pinned


@pytest.fixture
def pip_calls(tmp_path, monkeypatch) -> list:
    """The pip commands :func:`pinned.pinned_env` runs, under ``tmp_path``; each one only makes its target
    folder, as pip would."""
    calls = []

    def pip(args, **kw):
        calls.append(args)
        Path(args[args.index("--target") + 1]).mkdir(parents=True, exist_ok=True)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setenv("LITELVLM_PINNED_ENVS", str(tmp_path))
    monkeypatch.setattr(pinned.subprocess, "run", pip)
    return calls


def test_a_pin_is_installed_without_compiling_every_module(pip_calls):
    folder = pinned.pinned_env("glamm")
    (args,) = pip_calls
    assert "--no-compile" in args and "--target" in args and str(folder) in args
    assert (folder / ".installed").is_file() and pinned.pinned_env("glamm") == folder and len(pip_calls) == 1


def test_a_pinned_run_keeps_the_bytecode_of_what_it_imports_in_the_pinned_folder_and_nowhere_else(tmp_path):
    """The bytecode goes under the pinned folder (a pycache prefix), never beside a source it imports from
    elsewhere: the official code in ``../shared`` is read, never written."""
    folder, elsewhere = tmp_path / "pinned", tmp_path / "official"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "pinned_module.py").write_text("VALUE = 40\n")
    (elsewhere / "official_module.py").write_text("STEP = 1\n")
    script = tmp_path / "script.py"
    script.write_text(f"import sys\nsys.path.append({str(elsewhere)!r})\n"
                      "import official_module, pinned_module\n"
                      "print(pinned_module.VALUE + 2 * official_module.STEP)\n")
    written = []
    for _ in range(2):
        assert pinned.run_in_folder(folder, str(script)).strip() == "42"
        kept = {p.name.split(".")[0]: p.stat().st_mtime_ns for p in folder.rglob("*.pyc")}
        assert {"pinned_module", "official_module"} <= set(kept)
        assert not list(elsewhere.rglob("*.pyc")) and not (folder / "__pycache__").exists()
        written.append(kept)
    assert written[1] == written[0]   # the second run read the bytecode the first one kept, writing none


def test_pins_of_the_same_packages_share_one_folder_and_one_install(pip_calls):
    """IVC-Prune's and VScan's Qwen pins both name transformers 4.51.3 (and its bounds): one folder, installed
    once, its bytecode kept once."""
    assert pinned.PINS["ivc-prune"][1] == pinned.PINS["vscan-qwen"][1]
    assert pinned.pinned_env("ivc-prune") == pinned.pinned_env("vscan-qwen")
    assert len(pip_calls) == 1
    assert pinned.pinned_env("glamm") != pinned.pinned_env("ivc-prune") and len(pip_calls) == 2


def test_the_server_of_pinned_runs_ends_without_the_interpreters_teardown(monkeypatch):
    """Each test process closes its server at the session's end and waits for it: the server, whose every
    run has ended and been answered, ends at once (``os._exit``, its answers flushed) instead of tearing down
    the torch it imported (about a second at the end of each worker)."""
    import importlib.util
    import io

    spec = importlib.util.spec_from_file_location("forkserver", pinned.SCRIPTS / "forkserver.py")
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    answers, ended = io.StringIO(), []

    def exit_now(code):
        ended.append((code, answers.getvalue()))
        raise SystemExit(code)

    monkeypatch.setattr(server, "preload", lambda: None)
    monkeypatch.setattr(server.os, "dup", lambda fd: fd)   # no descriptor opened for the answers
    monkeypatch.setattr(server.os, "fdopen", lambda fd, mode: answers)
    monkeypatch.setattr(server.os, "_exit", exit_now)
    monkeypatch.setattr(server.sys, "stdin", io.StringIO(""))   # no request: the test process closed it
    with pytest.raises(SystemExit):
        server.main()
    assert ended == [(0, '{"ready": true}\n')]
