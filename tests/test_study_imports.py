"""Studies are packages without import circles (read from the source with ``ast``, nothing imported).

* a study's ``options`` never imports its heavy modules (``compute`` and the rest), not even inside a
  function: the command layer (``analysis/<study>/command.py``) imports ``options``, checks, then ``compute``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ANALYSIS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, bool, str]]:
    """(line, inside a function, imported module) for every import of ``path``; ``from a import b`` counts
    as both ``a`` and ``a.b`` (b may be a submodule), relative imports are resolved."""
    tree = ast.parse(path.read_text())
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    found: list[tuple[int, bool, str]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((child.lineno, nested, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                found.append((child.lineno, nested, base))
                found.extend((child.lineno, nested, f"{base}.{a.name}") for a in child.names)
            visit(child, nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


OPTIONS = sorted(ANALYSIS.glob("*/options.py"))


@pytest.mark.parametrize("path", OPTIONS, ids=lambda p: p.parent.name)
def test_options_imports_nothing_of_its_study_but_common_pieces(path):
    study = path.parent.name
    own = [f"{line}: {name}" for line, _, name in imports(path)
           if name.startswith(f"analysis.{study}.") and name.split(".")[2] not in LIGHT_OPTION_PEERS.get(study, ())]
    assert own == [], f"analysis/{study}/options.py imports its own study's modules (the command layer does)"


#: modules of its own study an ``options`` may import: light ones, themselves free of the heavy modules
LIGHT_OPTION_PEERS: dict[str, tuple[str, ...]] = {"efficiency": ("arch",), "figures": ("family",)}
