"""``--budgets`` from the command line to the selection kernel, the short way: read once (argparse ``type``,
:meth:`litelvlm.budget.Budget.list_argument`), the study's options checked once, the method looked up once
(the family's ``spec`` in ``ground``) and handed down, and through at most :data:`MAX_FILES` project files:
the call stack at the kernel, from ``litelvlm/cli.py`` (where argparse reads the line) to the kernel's module,
both counted."""

from __future__ import annotations

import ast
import contextlib
import importlib
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import litelvlm.budget as budget_module
from litelvlm.cli import main
from litelvlm.methods import get_method

ROOT = Path(__file__).resolve().parents[2]
#: the most project files a budget passes through on the stack, the command line's and the kernel's included
#: (cli, the study's runner, its compute, its scoring, the contract, ground_many's implementation, the
#: pruning step, the stage's step function, the method)
MAX_FILES = 9
PACKAGES = ("litelvlm", "analysis")


def _project_files(stack: traceback.StackSummary) -> list[str]:
    """The project files (``litelvlm/``, ``analysis/``) on ``stack``, each once, in call order."""
    out: list[str] = []
    for frame in stack:
        path = Path(frame.filename).resolve()
        if path.is_relative_to(ROOT) and (rel := path.relative_to(ROOT).as_posix()).startswith(PACKAGES):
            out.append(rel) if rel not in out else None
    return out


def _record_kernel(monkeypatch) -> list[traceback.StackSummary]:
    """Patch LiteLVLM's kernel (wherever its module lives) to record the stack it is called with."""
    module = sys.modules[get_method("litelvlm").select.__module__]
    kernel = module.litelvlm_select
    stacks: list[traceback.StackSummary] = []

    def recording(*args, **kw):
        stacks.append(traceback.extract_stack())
        return kernel(*args, **kw)

    monkeypatch.setattr(module, "litelvlm_select", recording)
    return stacks


@contextlib.contextmanager
def _counting_calls(function) -> Iterator[list[int]]:
    """Count the calls of ``function`` however it is held (a module's name, a study's list of checks): by its
    code."""
    calls = [0]
    code = function.__code__
    previous = sys.getprofile()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is code:
            calls[0] += 1

    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


CASES = {
    "eval-grounding": ["eval-grounding", "--limit-images", "1"],
    "validate": ["validate", "--repeats", "1"],
    "eval-grounding-sa2va": ["eval-grounding", "--limit-images", "1", "--model", "sa2va-tiny-random:0"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_budgets_reach_the_kernel_the_short_way(case, coco128, tmp_path, monkeypatch):
    argv = CASES[case]
    for module in ("analysis.grounding.options", "analysis.validate.options"):
        importlib.import_module(module)  # their default budgets are read at import
    stacks = _record_kernel(monkeypatch)
    reads = []
    parse = budget_module.Budget.parse.__func__
    monkeypatch.setattr(budget_module.Budget, "parse",
                        classmethod(lambda cls, t: reads.append(t) or parse(cls, t)))
    assert main([*argv, "--methods", "litelvlm", "--budgets", "64,16", "--refer-dir", str(coco128),
                 "--out", str(tmp_path / "out")]) == 0
    assert sorted(reads) == ["16", "64"], reads  # read once each, by argparse
    assert stacks, "the kernel never ran"
    for stack in stacks:
        files = _project_files(stack)
        assert files[0] == "litelvlm/cli.py" and files[-1] == get_method(
            "litelvlm").select.__module__.replace(
            ".", "/") + ".py", files
        assert len(files) <= MAX_FILES, files


def test_the_pipeline_hands_the_method_down():
    """``ground`` looks the method up once (its family's ``spec``) and hands that object to the CLIP-side
    step: the step never looks a method up by name again."""
    tree = ast.parse((ROOT / "litelvlm" / "lvlm" / "prune.py").read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "get_method" not in names


class _Checked(Exception):
    """Raised by the first step after a study's checks."""


#: study -> (its package, the module holding the first step after the checks, that step)
STUDIES = {
    "eval-grounding": ("analysis.grounding", "analysis.grounding.compute", "load_refer"),
    "positions": ("analysis.positions", "analysis.positions.compute", "pick_image"),
    "eval-video": ("analysis.video", "analysis.video.compute", "video_eval"),
}


@pytest.mark.parametrize("study", list(STUDIES))
def test_a_study_with_budgets_checks_its_options_once(study, tmp_path, monkeypatch, coco128):
    """The command layer checks the options (before torch) and hands the result down; the computation does not
    check them again."""
    package, where, step = STUDIES[study]
    monkeypatch.setattr(importlib.import_module(where), step, lambda *a,
                        **kw: (_ for _ in ()).throw(_Checked()))
    command = importlib.import_module(f"{package}.command")
    args = command.ARGS(out=str(tmp_path / "out"),
                        **({} if study == "eval-video" else {"refer_dir": str(coco128)}))
    with _counting_calls(importlib.import_module(f"{package}.options").check_args) as checks, \
            pytest.raises(_Checked):
        command.run(args)
    assert checks == [1]
