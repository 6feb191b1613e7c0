"""Wiring in the open: imports sit at the module's top (read with ``ast``, nothing imported).

An import inside a function is allowed only in a command module (the CLI layer: ``litelvlm/cli.py``,
``litelvlm/commands/``, the subcommand modules ``litelvlm.cli.COMMANDS`` names, ``analysis/commands.py`` and
the studies' ``command.py``), and only of a heavy module that waits for the arguments to be checked, so
``--help`` and every refusal stay under a second. :data:`ALLOWED` lists each one with its reason; it may only
shrink.

Two explicit ways reach a heavy or optional piece later without an import statement:

* an optional package (the ``quantize`` and ``notebooks`` extras, psutil) only through
  :func:`litelvlm.machine.optional.optional_import`, whose error names the extra (:data:`OPTIONAL_USERS`);
* ``importlib.import_module`` only in the few modules that resolve named pieces on first use
  (:data:`RESOLVERS`): :func:`litelvlm.lazy.resolve` (every :class:`litelvlm.lazy.Lazy`: the families' card
  pieces, the method registry, the subcommands) and the packages' lazy exports
  (:func:`litelvlm.lazy.lazy_exports`).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from tests.fixtures.sources import modules, parsed

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("litelvlm", "analysis")

#: (file, imported module, why it waits): every import inside a function body of litelvlm/ and analysis/
ALLOWED: set[tuple[str, str, str]] = {
    ("litelvlm/cli.py", "transformers.utils", "quiets transformers' logging only where a command imported it")
    , ("litelvlm/cli.py", "torch", "--device cuda*: CUDA is looked for only when a command names it"),
    ("litelvlm/commands/select.py", "litelvlm.methods.select", "select: CLIP features (torch) after the "
     "checks"),
    ("litelvlm/commands/select.py", "litelvlm.pruning",
     "select: the selector inputs (torch) after the checks"),
    ("litelvlm/commands/select.py", "litelvlm.clip", "select: loads CLIP (torch) after the checks"),
    ("litelvlm/commands/select.py", "litelvlm.registry.provenance",
     "select: the weights banner (torch) after the checks"),
    ("litelvlm/commands/select.py", "litelvlm.pruning.plot", "select --save-overlay: matplotlib"),
    ("litelvlm/commands/select_family.py", "litelvlm.data.refer", "select: reads the image (PIL) after the "
     "checks"),
    ("litelvlm/commands/select_family.py", "litelvlm.registry.provenance",
     "select: the weights banner (torch)"),
    ("litelvlm/commands/select_family.py", "litelvlm.pruning.plot", "select --save-overlay: matplotlib"),
    ("litelvlm/explore/command.py", "litelvlm.explore.data", "explore: runs the model (torch) after the "
     "checks"),
    ("litelvlm/explore/command.py", "litelvlm.explore.page", "explore: writes the page (numpy, PIL)"),
    ("litelvlm/toy/command.py", "litelvlm.toy.train", "toy-train: trains (torch) after the checks"),
    ("analysis/figures/command.py", "analysis.figures.compute",
     "figures: draws (matplotlib) after the checks"),
    ("analysis/figures/command.py", "analysis.figures.notebook_gen", "figures --notebooks: every figure "
     "set's module"),
}
#: the modules that import an optional package, all through ``optional_import``: (file, package)
OPTIONAL = ("bitsandbytes", "torchao", "jupyterlab", "papermill", "ipywidgets", "nbformat", "psutil")
OPTIONAL_USERS: set[tuple[str, str]] = {
    ("litelvlm/models/quantize.py", "bitsandbytes"), ("litelvlm/models/quantize.py", "torchao"),
    ("litelvlm/models/quantize.py", "torchao.quantization"), ("litelvlm/machine/memory.py", "psutil"),
    ("litelvlm/explore/widget.py", "ipywidgets"), ("litelvlm/explore/notebook.py", "nbformat"),
    ("litelvlm/explore/notebook.py", "nbformat.v4"), ("analysis/figures/notebook_gen.py", "nbformat"),
    ("analysis/figures/notebook_gen.py", "nbformat.v4"), ("analysis/figures/notebook_run.py", "papermill"),
}
#: the modules that call ``importlib.import_module`` (each resolves names it is given, on first use; the
#: family cards' pieces, the method registry's typed entries, the subcommands and the studies' heavy run
#: functions resolve through litelvlm.lazy.Lazy)
RESOLVERS = {"litelvlm/lazy.py", "litelvlm/machine/optional.py"}


def _command_modules() -> set[str]:
    from analysis.commands import COMMANDS as STUDIES
    from litelvlm.cli import COMMANDS

    named = {c.module.replace(".", "/") + ".py" for c in [*COMMANDS.values(), *STUDIES.values()]}
    return named | {"litelvlm/cli.py", "analysis/commands.py", "analysis/common/runs/command.py"} | {
        str(p.relative_to(ROOT)) for p in (ROOT / "litelvlm" / "commands").glob("*.py")}


@functools.cache
def _files() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((str(path.relative_to(ROOT)), parsed(path)) for path in modules(*PACKAGES))


def _absolute(rel: str, node: ast.ImportFrom) -> str:
    package = Path(rel).with_suffix("").parts[:-1]   # a package's __init__ and a module: the folder
    up = list(package[: len(package) - node.level + 1])
    return ".".join(up + ([node.module] if node.module else []))


def nested_imports() -> list[tuple[str, int, str]]:
    """(file, line, module) for every import inside a function body (``from a import b``: a)."""
    found = []
    for rel, tree in _files():
        def visit(node: ast.AST, nested: bool, rel=rel) -> None:
            for child in ast.iter_child_nodes(node):
                if nested and isinstance(child, ast.Import):
                    found.extend((rel, child.lineno, a.name) for a in child.names)
                elif nested and isinstance(child, ast.ImportFrom):
                    found.append((rel, child.lineno, _absolute(rel, child) if child.level else child.module))
                visit(child, nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(tree, False)
    return found


def _calls(name: str) -> list[tuple[str, list[str]]]:
    out = []
    for rel, tree in _files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr",
                                                      getattr(node.func, "id", "")) == name:
                out.append((rel, [a.value for a in node.args if isinstance(a, ast.Constant)]))
    return out


def test_every_import_inside_a_function_is_allowed():
    allowed = {(f, m) for f, m, _ in ALLOWED}
    extra = sorted(f"{f}:{line}: {m}" for f, line, m in nested_imports() if (f, m) not in allowed)
    assert extra == [], ("move these imports to the module's top (or, in a command module, add them to "
                         "ALLOWED):\n" + "\n".join(extra))


def test_the_allow_list_is_short_current_and_in_command_modules():
    assert len(ALLOWED) < 60
    found = {(f, m) for f, _, m in nested_imports()}
    stale = sorted((f, m) for f, m, _ in ALLOWED if (f, m) not in found)
    assert stale == [], f"remove from ALLOWED (no longer imported inside a function): {stale}"
    commands = _command_modules()
    assert sorted({f for f, _, _ in ALLOWED} - commands) == []
    assert all(reason for _, _, reason in ALLOWED)


def test_optional_packages_are_imported_only_through_optional_import():
    direct = [f"{rel}: {a.name}" for rel,
              tree in _files() for node in ast.walk(tree) if isinstance(node, ast.Import)
              for a in node.names if a.name.split(".")[0] in OPTIONAL]
    direct += [f"{rel}: {node.module}" for rel, tree in _files() for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in OPTIONAL]
    assert direct == []
    assert {(rel, args[0]) for rel, args in _calls("optional_import") if args} == OPTIONAL_USERS


def test_import_module_only_in_the_resolvers():
    assert {rel for rel, _ in _calls("import_module")} == RESOLVERS

