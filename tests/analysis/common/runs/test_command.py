"""Every study's ``command`` module is one call of :func:`analysis.common.runs.command.study_run`: the options
as the study's dataclass, its checks in order, then the heavy function imported and run. The commands'
behaviour, messages and exit codes are the end-to-end tests' (``tests/end_to_end``); here, the shell itself
and that no study copies it."""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass

import pytest

from analysis.common.runs.command import study_run
from analysis.common.runs.study import STUDIES
from litelvlm.lazy import Lazy


def test_no_study_command_repeats_the_shell():
    """No ``analysis/*/command.py`` converts, checks and imports by hand: each ``run`` is ``study_run``'s."""
    import importlib

    from analysis.commands import COMMANDS

    for name, (module_name, _) in COMMANDS.items():
        mod = importlib.import_module(module_name)
        src = inspect.getsource(mod)
        assert "as_args(" not in src and "check_early(" not in src, module_name
        runner = mod.run if name != "figures" else mod.draw
        assert getattr(runner, "study", None) is not None, f"{module_name}.run is not made by study_run"
    assert set(STUDIES) <= set(COMMANDS)


@dataclass
class _Args:
    out: str = "o"
    n: int = 1


def test_study_run_checks_in_order_then_imports_the_heavy_function(monkeypatch, tmp_path):
    """A check's returned options replace the options; the heavy module is imported only after every check,
    with the options and the caller's keywords; a namespace becomes the dataclass."""
    (tmp_path / "heavy_probe.py").write_text("import sys\nCALLS = []\n"
                                             "def go(a, **kw):\n    CALLS.append((a, kw))\n    return 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []

    def first(a):
        seen.append(("first", a.n, "heavy_probe" in sys.modules))
        return _Args(out=a.out, n=a.n + 1)

    def second(a):
        seen.append(("second", a.n, "heavy_probe" in sys.modules))

    run = study_run(_Args, Lazy("heavy_probe", "go"), first, second)
    assert run(argparse.Namespace(out="x", n=2), pipe="p") == 7
    assert seen == [("first", 2, False), ("second", 3, False)]
    import heavy_probe

    assert heavy_probe.CALLS == [(_Args(out="x", n=3), {"pipe": "p"})]
    assert run.study is _Args


def test_a_refusing_check_stops_before_the_import(monkeypatch, tmp_path):
    from litelvlm.errors import LiteLVLMError

    (tmp_path / "never_imported.py").write_text("raise AssertionError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def refuse(a):
        raise LiteLVLMError("no")

    with pytest.raises(LiteLVLMError, match="no"):
        study_run(_Args, Lazy("never_imported", "go"), refuse)(_Args())
    assert "never_imported" not in sys.modules


def test_the_heavy_function_may_depend_on_the_options(monkeypatch, tmp_path):
    (tmp_path / "pick_probe.py").write_text("def small(a):\n    return 1\ndef large(a):\n    return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = study_run(_Args, lambda a: Lazy("pick_probe", "large" if a.n > 1 else "small"))
    assert (run(_Args(n=1)), run(_Args(n=5))) == (1, 2)
    with pytest.raises(TypeError, match="expected _Args"):
        run({"n": 1})


def test_the_heavy_function_is_named_by_a_lazy_never_a_string():
    """The ``"module:function"`` form is gone: a string is refused when the command is made, a chooser that
    returns one when the command runs."""
    with pytest.raises(TypeError, match="Lazy"):
        study_run(_Args, "pick_probe:small")
    with pytest.raises(TypeError, match="not a Lazy"):
        study_run(_Args, lambda a: "pick_probe:small")(_Args())
