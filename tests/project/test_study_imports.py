"""Studies are packages without import circles (read from the source with ``ast``, nothing imported).

* a study's ``options`` never imports its heavy modules (``compute`` and the rest), not even inside a
  function: the command layer (``analysis/<study>/command.py``) imports ``options``, checks, then ``compute``;
* no study imports another study's internals (the allowed set is :data:`DRAWING_SIDE` below; shared pieces
  live in ``analysis/common``, the figure-set base among them);
* the packages of ``analysis/`` import each other without a cycle: the figure-set base
  (``analysis.common.presentation.figure_set``) sits below the studies, the registry (``analysis.figures``)
  above them;
* a figure set runs its study through the study's typed ``run(Args(...))``, never an argv list;
* an import inside a function is of a heavy module or says why it is lazy (:data:`HEAVY_PACKAGES`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.fixtures.import_graph import cycles, imports, module_name, source_of
from tests.fixtures.sources import parsed

ANALYSIS = Path(__file__).resolve().parents[2] / "analysis"


OPTIONS = sorted(ANALYSIS.glob("*/options.py"))


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: p.parent.name)
def test_options_imports_nothing_of_its_study_but_common_pieces(path):
    study = path.parent.name
    own = [f"{line}: {name}" for line, _, name in imports(path)
           if name.startswith(f"analysis.{study}.")
           and name.split(".")[2] not in LIGHT_OPTION_PEERS.get(study, ())]
    assert own == [], f"analysis/{study}/options.py imports its own study's modules (the command layer does)"


#: modules of its own study an ``options`` may import: light ones, themselves free of the heavy modules
LIGHT_OPTION_PEERS: dict[str, tuple[str, ...]] = {"efficiency": ("arch",)}


STUDIES = sorted(p.name for p in ANALYSIS.iterdir() if (p / "__init__.py").exists()
                 and p.name not in ("common",))

#: A study imports, of another package of ``analysis/``, only:
#: * ``analysis.common`` (the pieces two studies share, the figure-set base
#: ``analysis.common.presentation.figure_set``
#:   and ``analysis.common.presentation.smoke_inputs`` among them) and ``analysis.commands``' table; never
#:   ``analysis.figures``, the registry above the studies that imports every study's ``figure_set``
#:   (:func:`test_no_study_imports_the_figures_registry`);
#: * a study's public API, its package's names (``from analysis.grounding import GroundingArgs, run``);
#: * in a figure set that draws another study's tables (figure set 9 draws ``eval-grounding``'s tables of a
#:   UniPixel run, figure set 10 ``reversal``'s on the merged grid): that study's ``figure_set`` (its reader)
#:   and ``plots`` (its drawings), the published drawing side of a study.
DRAWING_SIDE = ("figure_set", "plots")
#: cross-study imports not yet removed: (importing module, imported module); this list may only shrink
KNOWN: set[tuple[str, str]] = set()


def cross_study_imports() -> set[tuple[str, str, int]]:
    """(importing module, imported module, line) for every import of another study's module."""
    found = set()
    for path in sorted(ANALYSIS.rglob("*.py")):
        rel = path.relative_to(ANALYSIS).parts
        if len(rel) < 2:
            continue  # analysis/commands.py, analysis/__init__.py: the registry level
        study, module = rel[0], module_name(path)
        for line, _, name in imports(path):
            parts = name.split(".")
            if parts[0] != "analysis" or len(parts) < 2 or parts[1] in (study, "common"):
                continue
            if study == "figures":
                continue  # the registry: it imports every study's figure set
            if parts[1] not in STUDIES:
                continue  # ``from analysis import x``: x is checked as analysis.x
            if path.name == "figure_set.py" and len(parts) >= 3 and parts[2] in DRAWING_SIDE:
                continue
            if len(parts) == 2 or source_of(".".join(parts[:3])) is None:
                continue  # the study's public API (``from analysis.grounding import GroundingArgs, run``)
            found.add((module, ".".join(parts[:3]), line))
    return found


def test_no_study_imports_another_study_s_internals():
    found = {(m, t) for m, t, _ in cross_study_imports()}
    assert found - KNOWN == set(), sorted(cross_study_imports())
    assert KNOWN <= found, f"fixed: remove {sorted(KNOWN - found)} from KNOWN"


# -- layers: the figure-set base below the studies, the registry above them ----------------------------------
def _package_of(module: str) -> str | None:
    path = source_of(module)
    if path is None:
        return None
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def package_graph() -> dict[str, set[str]]:
    """package of ``analysis/`` -> the other packages of ``analysis/`` its modules import (at the top or
    inside a function; ``from analysis import x`` counts as ``analysis.x``)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ANALYSIS.rglob("*.py")):
        source = _package_of(module_name(path))
        edges = graph.setdefault(source, set())
        for _, _, name in imports(path):
            target = _package_of(name) if name.startswith("analysis.") else None
            if target is not None and target != source:
                edges.add(target)
    return graph


def test_cycles_finds_a_strongly_connected_group():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_packages_of_analysis_import_each_other_without_a_cycle():
    graph = package_graph()
    assert {"analysis.common", "analysis.figures", "analysis.grounding"} <= set(graph)  # the walk sees them
    assert cycles(graph) == []


def test_no_study_imports_the_figures_registry():
    """``analysis.figures`` is the registry and the command above the studies; the figure-set base they build
    on is ``analysis.common.presentation.figure_set`` (and ``analysis.common.presentation.smoke_inputs``)."""
    found = [f"{path.relative_to(ROOT)}:{line}: {name}" for path in sorted(ANALYSIS.rglob("*.py"))
             if path.relative_to(ANALYSIS).parts[0] not in ("figures",)
             for line, _, name in imports(path) if name == "analysis.figures" or name.startswith(
                 "analysis.figures.")]
    assert found == []


# -- imports inside functions --------------------------------------------------------------------------------
ROOT = ANALYSIS.parent
#: An import inside a function is kept there only for a reason: its module is heavy (:func:`is_heavy`: one of
#: these packages, or a module of the project whose top level imports one), so the light modules (``options``,
#: ``command``, the figure sets' readers) and a bad option never wait for it; or its line says
#: ``# lazy: <reason>``. These are the packages slow to import (torch and what a bad option must never wait
#: for, the data libraries the light modules avoid at import) and the optional ones a run may lack.
HEAVY_PACKAGES = ("torch", "transformers", "open_clip", "pandas", "scipy", "matplotlib", "captum",
                  "accelerate",
                  "bitsandbytes", "optimum", "peft", "sklearn", "skimage", "cv2", "nbformat", "nbclient",
                  "IPython", "safetensors", "huggingface_hub", "torchvision", "timm", "sam2", "decord", "av",
                  "pycocotools", "tqdm", "PIL", "numpy", "pyarrow", "seaborn", "statsmodels", "papermill")


def _top_level_imports(path: Path) -> list[str]:
    return [name for _, nested, name in imports(path) if not nested]


_HEAVY_CACHE: dict[str, bool] = {}


def is_heavy(module: str, seen: frozenset = frozenset()) -> bool:
    """Whether importing ``module`` imports a heavy package: it is one, or one of the project's modules whose
    top level (or a package above it) imports one, directly or through the project's modules."""
    if module.split(".")[0] in HEAVY_PACKAGES:
        return True
    if module.split(".")[0] not in ("litelvlm", "analysis") or module in seen:
        return False
    if module not in _HEAVY_CACHE:
        parts = module.split(".")
        heavy = False
        for i in range(1, len(parts) + 1):  # the packages above it run first
            path = source_of(".".join(parts[:i]))
            if path is not None and any(is_heavy(m, seen | {module}) for m in _top_level_imports(path)):
                heavy = True
                break
        _HEAVY_CACHE[module] = heavy
    return _HEAVY_CACHE[module]


def nested_imports_without_reason() -> list[str]:
    """Imports inside a function of ``analysis/`` that are neither of a heavy module (:func:`is_heavy`) nor
    marked ``# lazy: <reason>`` on their line."""
    found = []
    for path in sorted(ANALYSIS.rglob("*.py")):
        lines = path.read_text().splitlines()
        for line, nested, name in imports(path):
            if not nested or "# lazy:" in lines[line - 1] or is_heavy(name):
                continue
            if source_of(name) is None and "." in name and is_heavy(name.rsplit(".", 1)[0]):
                continue  # ``from heavy_module import a_name``
            found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    return sorted(set(found))


def test_imports_inside_functions_are_heavy_or_say_why():
    found = nested_imports_without_reason()
    assert found == [], "move these to the module's top, or mark them '# lazy: <reason>':\n" + "\n".join(
        found)


def test_the_heavy_rule_tells_light_from_heavy_modules():
    assert is_heavy("torch") and is_heavy("analysis.reversal.compute") and is_heavy("litelvlm.clip")
    assert not is_heavy("analysis.reversal.options") and not is_heavy("litelvlm.errors") and not is_heavy(
        "json")


# -- figure sets run their study through its typed ``run(Args(...))`` ----------------------------------------
FIGURE_SET_MODULES = sorted(p for p in ANALYSIS.glob("*/figure_set.py") if p.parent.name != "common")


def _smoke_function(tree: ast.Module) -> ast.FunctionDef:
    """The function a module's ``FIGURE_SET = FigureSet(..., make_smoke=NAME)`` names."""
    calls = [n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "FigureSet"]
    name = next(k.value.id for c in calls for k in c.keywords if k.arg == "make_smoke")
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)


def _studies(tree: ast.Module) -> tuple[str, ...]:
    """The studies a module's ``FIGURE_SET = FigureSet(..., studies=(...))`` draws."""
    calls = [n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "FigureSet"]
    return next(tuple(ast.literal_eval(k.value)) for c in calls for k in c.keywords if k.arg == "studies")


def _bindings(path: Path) -> dict[str, str]:
    """name -> the qualified name it is bound to by the top-level imports of ``path``
    (``from analysis.grounding import run``: ``run`` -> ``analysis.grounding.run``)."""
    found = {}
    for node in parsed(path).body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):   # ``import a.b`` binds ``a``; ``import a.b as c`` binds ``a.b``
            found.update((a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2 for a in node.names)
    return found


def _resolve(qualified: str) -> str:
    """``qualified`` followed through the package re-exports of ``analysis/`` (``analysis.grounding.run``,
    which ``analysis/grounding/__init__.py`` imports from ``analysis.grounding.command``, is
    ``analysis.grounding.command.run``)."""
    module, _, name = qualified.rpartition(".")
    path = source_of(module) if module.startswith("analysis.") else None
    if path is None or path.name != "__init__.py" or source_of(qualified) is not None:
        return qualified
    target = _bindings(path).get(name)
    return qualified if target is None or target == qualified else _resolve(target)


def _qualified(node: ast.AST, bound: dict[str, str]) -> str:
    """What a called expression names (``run``, ``command.run``), resolved through the module's imports."""
    if isinstance(node, ast.Name):
        return _resolve(bound.get(node.id, node.id))
    if isinstance(node, ast.Attribute):
        return _resolve(f"{_qualified(node.value, bound)}.{node.attr}")
    return ""


def _typed_runs(path: Path) -> list[str]:
    """The calls in the smoke function of the figure set ``path`` of its study's typed ``run``
    (``analysis.<study>.command.run``, imported from there or from the study's package, for a study of its
    ``studies``) given the study's options dataclass made in place (``run(GroundingArgs(...))``)."""
    tree = parsed(path)
    bound = _bindings(path)
    runs = {f"analysis.{study}.command.run": f"analysis.{study}." for study in _studies(tree)}
    found = []
    for c in ast.walk(_smoke_function(tree)):
        called = _qualified(c.func, bound) if isinstance(c, ast.Call) else ""
        if called in runs and c.args and isinstance(c.args[0], ast.Call):
            options = _qualified(c.args[0].func, bound)
            if options.endswith("Args") and options.startswith(runs[called]):
                found.append(f"{called}({options.rsplit('.', 1)[1]}(...))")
    return found


def test_typed_runs_are_calls_of_the_study_s_own_run():
    """``run`` of ``analysis.<study>.command`` (or the package re-exporting it), never another function given
    the options, nor another study's ``run``."""
    assert _resolve("analysis.grounding.run") == "analysis.grounding.command.run"
    assert _resolve("analysis.grounding.compute.run_grounding") == "analysis.grounding.compute.run_grounding"
    assert _typed_runs(ANALYSIS / "reversal" / "figure_set.py") == [
        "analysis.reversal.command.run(ReversalArgs(...))"]
    assert _typed_runs(ANALYSIS / "paired" / "figure_set.py") == [
        "analysis.grounding.command.run(GroundingArgs(...))"]


@pytest.mark.parametrize("path", FIGURE_SET_MODULES, ids=lambda p: p.parent.name)
def test_a_figure_set_runs_its_study_through_its_typed_run(path):
    argv = [name for _, _, name in imports(path)
            if name == "litelvlm.cli" or name.startswith("litelvlm.cli.")]
    assert argv == [], f"{path.parent.name}: a figure set runs its study as run(Args(...)), not by argv"
    assert _typed_runs(path), (f"{path.parent.name}: its smoke results come from its study's typed run "
                               "(analysis.<study>.command.run) given the study's options: "
                               "run(<Study>Args(...))")


def test_the_figure_set_walk_sees_every_figure_set():
    assert len(FIGURE_SET_MODULES) == 12
