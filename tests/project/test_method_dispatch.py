"""A method is a typed unit: no study (``analysis/``) and no pipeline (``litelvlm/`` outside the method
contract and the methods' own modules) branches on a method's name, its ``stage`` or its ``kind``. They ask
the :class:`Method` object (its typed attributes and stage object) instead; a table keyed by method (the
paper's numbers, a colour) is data, not a branch."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from litelvlm.method_stage import STAGE_OBJECTS, STAGES
from litelvlm.methods import method_names
from tests.fixtures.sources import modules, parsed

ROOT = Path(__file__).resolve().parents[2]
#: the contract and the registry, which define names and stages
CONTRACT = {"litelvlm/method.py", "litelvlm/methods/__init__.py"}
#: modules whose ``method`` is no pruning method: the reason
NOT_PRUNING = {"litelvlm/llm/attribution.py": "captum's attribution algorithms (saliency, integrated "
               "gradients)"}
#: names that hold the baseline's name
BASELINE_NAMES = {"BASELINE"}


def _mentions_method(node: ast.AST) -> bool:
    """Whether an expression reads a method's name: ``method``, ``a.method``, ``r["method"]``, ``m``,
    ``spec.name``..."""
    text = ast.unparse(node)
    return "method" in text or text in {"m", "name", "spec.name"} or text.endswith(".name")


def branches(path: Path) -> list[str]:
    """``path:line: source`` of each comparison with a method's name, stage or kind in ``path``."""
    rel = path.relative_to(ROOT).as_posix()
    names, kinds = set(method_names()), set(STAGES) | {"clip", "llm"}
    out = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "isin":
            sides = [node.func.value, *node.args]
        else:
            continue
        consts = {c.value for s in sides for c in ast.walk(s) if isinstance(c, ast.Constant)
                  and isinstance(c.value, str)}
        attrs = {a.attr for s in sides for a in ast.walk(s) if isinstance(a, ast.Attribute)}
        ids = {n.id for s in sides for n in ast.walk(s) if isinstance(n, ast.Name)}
        on_stage = bool({"stage", "kind"} & attrs) and bool(consts & kinds)
        on_name = bool(consts & names) and any(_mentions_method(s) for s in sides)
        on_baseline = bool(ids & BASELINE_NAMES)
        if on_stage or on_name or on_baseline:
            out.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:90]}")
    return out


def name_dispatches(path: Path) -> list[str]:
    """``path:line: source`` of each ``getattr(x, name)`` whose attribute is no literal and reads a stage or a
    step (a stage dispatched by a name it holds, not by the function it holds)."""
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for node in ast.walk(parsed(path)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant)
                and any(w in ast.unparse(node.args[1]) for w in ("stage", "step"))):
            out.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:90]}")
    return out


def method_branches() -> list[str]:
    skipped = CONTRACT | set(NOT_PRUNING)
    return [b for p in modules("analysis", "litelvlm") if p.relative_to(ROOT).as_posix() not in skipped
            for b in branches(p)]




def test_no_study_or_pipeline_branches_on_a_methods_name_stage_or_kind():
    found = method_branches()
    assert not found, "\n".join(found)


def test_the_check_finds_each_form_of_branch(tmp_path):
    """The check is not vacuous: each form it forbids, written into a module, is found."""
    probe = ROOT / "analysis" / "_probe_dispatch.py"
    probe.write_text('if spec.stage == "clip": pass\nif method == "litelvlm": pass\nif r["method"] == '
                     '"fastv": pass\nx = d[d["method"].isin(["none"])]\nif m == BASELINE: pass\nif '
                     'get_method(m).kind != "clip": pass\nif mode == "none": pass\n')
    try:
        assert len(branches(probe)) == 6
    finally:
        probe.unlink()


def test_a_stage_runs_the_function_it_holds_not_a_name():
    """A stage is dispatched by the function it holds (``Stage.step``), never by looking a name up on the
    pipeline: every stage holds a plain function, and nothing in the library or the studies calls ``getattr``
    with a stage's or a step's name."""
    assert all(inspect.isfunction(s.step) and not isinstance(s, str) for s in STAGE_OBJECTS.values())
    found = [d for p in modules("analysis", "litelvlm") for d in name_dispatches(p)]
    assert not found, "\n".join(found)


def test_the_name_dispatch_check_finds_a_getattr_of_a_step(tmp_path):
    probe = ROOT / "analysis" / "_probe_step.py"
    probe.write_text('f = getattr(pipeline, self.step)\ng = getattr(pipe, stage.name)\nh = getattr(a, "b")\n')
    try:
        assert len(name_dispatches(probe)) == 2
    finally:
        probe.unlink()
