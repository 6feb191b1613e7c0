"""The house rules that code can check: the library never imports the studies."""

from __future__ import annotations

import ast
from pathlib import Path

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
