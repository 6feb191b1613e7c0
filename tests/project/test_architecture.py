"""The house rules that code can check: the library never imports the studies, and no module imports one that
imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.fixtures import import_graph
from tests.fixtures.import_graph import cycles, module_graph
from tests.fixtures.sources import parsed

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    """Modules a file imports: import statements and string arguments of ``import_module``."""
    out: set[str] = set()
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                    getattr(node.func, "id", "")) == "import_module":
            out.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return out


def test_library_never_imports_the_studies():
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if m.split(".")[0] in
                                                  ("analysis", "benchmarks"))
                 for p in (ROOT / "litelvlm").rglob("*.py")}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"litelvlm/ imports the studies: {offenders}"
    assert len(list((ROOT / "litelvlm").rglob("*.py"))) > 20  # the scan saw the library


def test_study_subcommands_reach_the_cli_through_entry_points():
    from litelvlm.cli import COMMANDS, all_commands

    assert not any(m.startswith("analysis") for m, _ in COMMANDS.values())
    assert {"demo", "reversal", "eval-grounding", "figures", "select"} <= set(all_commands())


def test_no_module_imports_one_that_imports_it_back():
    """Every import arrow runs one way: no group of modules of ``litelvlm/`` or ``analysis/`` imports each
    other when they run (imports inside functions and under ``if TYPE_CHECKING:`` aside). A circle works only
    while each side reads the other's names at call time, and it hides which of the two is the lower one."""
    graph = module_graph("litelvlm", "analysis")
    assert {"litelvlm.pruning.scores", "litelvlm.clip"} <= set(graph)   # the walk sees the library
    assert "litelvlm.pruning.selection" in graph["litelvlm.pruning.scores"]   # and its relative imports
    assert cycles(graph) == [], "modules that import each other: give the names they share a lower module"
    # nor when their functions run: a command module imports its heavy part late, and nothing imports it back
    assert cycles(module_graph("litelvlm", "analysis", inside_functions=True)) == []


def test_the_module_graph_follows_what_runs_at_import(tmp_path, monkeypatch):
    """``from p import m`` is an edge to the module ``p.m``, ``from p import name`` to ``p``; an import inside
    a function or under ``if TYPE_CHECKING:`` is none."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import A\n")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nfrom . import b\nA = 1\n"
                                  "if TYPE_CHECKING:\n    from .c import C\n")
    (package / "b.py").write_text("from pkg import A\n\n\ndef f():\n    from .c import C\n")
    (package / "c.py").write_text("from .a import A\n")
    monkeypatch.setattr(import_graph, "ROOT", tmp_path)
    graph = import_graph.module_graph("pkg")
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg"}, "pkg.c": {"pkg.a"}}
    assert cycles(graph) == [["pkg", "pkg.a", "pkg.b"]]
    assert import_graph.module_graph("pkg", inside_functions=True)["pkg.b"] == {"pkg", "pkg.c"}
