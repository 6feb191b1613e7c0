"""Wiring the reader can follow: every import named by text is a typed reference that one test resolves.

A registry that imports on first use (the methods, the subcommands, a family card's pieces, a study's heavy
run function) names what it imports by :class:`litelvlm.lazy.Lazy`: the module and the attribute as two
fields, checked when the reference is made. :func:`test_every_named_import_resolves` imports every one of
them, so a typo fails the suite instead of a run. The library and the studies evaluate no source text (no
``eval``, no ``exec``) and write no ``"package.module:attribute"`` string (read with ``ast``): the registered
family cards are ``Lazy(module, attribute)`` too.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import tomllib

from litelvlm.lazy import Lazy
from tests.fixtures.sources import parsed

ROOT = Path(__file__).resolve().parents[2]
#: the files the string rules read: every module of the library and of the studies
SCANNED = tuple(sorted(p for package in ("litelvlm", "analysis") for p in (ROOT / package).rglob("*.py")))
#: ``"module:attribute"`` (or ``"package.module:attribute"``): an import written as one string
MODULE_ATTRIBUTE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
#: file -> why it makes a ``Lazy`` from names known only when it runs, and what checks those names
DYNAMIC_LAZY: dict[str, str] = {
    "litelvlm/commands/__init__.py": "Command.load: a subcommand table's module, every one loaded by "
                                     "test_every_named_import_resolves",
    "litelvlm/methods/__init__.py": "the methods' declarations, read from their modules' source: every entry "
                                    "and variant is loaded by test_every_named_import_resolves",
}


@functools.cache
def _texts() -> tuple[tuple[str, str], ...]:
    return tuple((p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8")) for p in SCANNED)


@functools.cache
def _tree(rel: str) -> ast.Module:
    return parsed(ROOT / rel)


def _trees(pattern: str) -> list[tuple[str, ast.Module]]:
    """(file, syntax tree) of the scanned files whose text matches ``pattern`` (the others cannot hold what
    a rule looks for)."""
    return [(rel, _tree(rel)) for rel, text in _texts() if re.search(pattern, text)]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of ``tree`` (text for the reader, not wiring)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _name(func: ast.expr) -> str:
    return getattr(func, "id", getattr(func, "attr", ""))


def test_the_library_evaluates_no_source_text():
    found = [f"{rel}:{node.lineno}: {_name(node.func)}(" for rel, tree in _trees(r"\b(eval|exec)\b")
             for node in ast.walk(tree) if isinstance(node, ast.Call) and _name(node.func) in ("eval", "exec")
             and (isinstance(node.func, ast.Name) or getattr(node.func.value, "id", "") == "builtins")]
    assert found == [], ("evaluated source text (import the module, or declare the value typed):\n"
                         + "\n".join(found))


def test_no_import_is_written_as_one_module_attribute_string():
    found = sorted(f"{rel}:{node.lineno}: {node.value!r}"
                   for rel, tree in _trees(MODULE_ATTRIBUTE.pattern[1:-1]) for docs in [_docstrings(tree)]
                   for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                   and MODULE_ATTRIBUTE.match(node.value))
    assert found == [], ("write an import (or a Lazy(module, attribute)) instead of these strings:\n"
                         + "\n".join(found))


def test_a_lazy_reference_keeps_module_and_attribute_apart():
    assert Lazy("litelvlm.methods.fastv", "FASTV").module == "litelvlm.methods.fastv"
    for module, attribute in (("litelvlm.methods.fastv:FASTV", None), ("litelvlm.methods.fastv", "FASTV:x"),
                              ("litelvlm..methods", None), ("", None), ("litelvlm.methods", "")):
        with pytest.raises(ValueError, match="Lazy"):
            Lazy(module, attribute)


@functools.cache
def _literal_lazies() -> tuple[list[tuple[str, Lazy]], list[str]]:
    """Every ``Lazy(...)`` of the scanned files whose arguments are literals, and where the others are."""
    literal, dynamic = [], []
    for rel, tree in _trees(r"\bLazy\("):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == "Lazy":
                args = [*node.args, *(k.value for k in node.keywords)]
                if all(isinstance(a, ast.Constant) for a in args):
                    keywords = {k.arg: k.value.value for k in node.keywords}
                    literal.append((f"{rel}:{node.lineno}", Lazy(*(a.value for a in node.args), **keywords)))
                else:
                    dynamic.append(rel)
    return literal, dynamic


def _study_runs() -> list[tuple[str, str, Callable[[], Any], type | None]]:
    """(where, what it names, its import, a callable) of every study's heavy run function: the ``Lazy`` its
    command's ``run`` (made by ``study_run``) imports, or, where the options choose among several, every
    literal ``Lazy`` of that command module."""
    from analysis.commands import COMMANDS as STUDIES

    literal, _ = _literal_lazies()
    out: list[tuple[str, str, Callable[[], Any], type | None]] = []
    for command in STUDIES.values():
        module = command.load()
        runs = [v for v in vars(module).values() if callable(v) and getattr(v, "heavy", None) is not None]
        assert len(runs) == 1, f"{command.module}: {len(runs)} functions made by study_run, not 1"
        heavy = runs[0].heavy
        rel = command.module.replace(".", "/") + ".py"
        refs = [heavy] if isinstance(heavy, Lazy) else [r for w, r in literal if w.startswith(f"{rel}:")]
        assert refs, f"{command.module}: its run's heavy function names no Lazy"
        out += [(f"{command.module}.run", str(r), r.get, Callable) for r in refs]
    return out


def _registered() -> list[tuple[str, str, Callable[[], Any], type | None]]:
    """(where, what it names, its import, what it must be) of every registry's entries: the methods, the
    subcommands, the studies' run functions, the registered family cards and their pieces."""
    from analysis.commands import COMMANDS as STUDIES
    from litelvlm import methods
    from litelvlm.cli import COMMANDS, all_commands
    from litelvlm.commands import Command
    from litelvlm.method import Method
    from litelvlm.models.family_card import PIECES, FamilyCard
    from litelvlm.registry.families import REGISTERED, cards

    out: list[tuple[str, str, Callable[[], Any], type | None]] = []
    out += [(f"methods.TABLE[{n!r}]", str(e.method), e.method.get, Method) for n, e in methods.TABLE.items()]
    out += [(f"methods.VARIANTS[{k!r}]", str(e.method), e.method.get, Method)
            for k, e in methods.VARIANTS.items()]
    for table, where in ((COMMANDS, "litelvlm.cli.COMMANDS"), (STUDIES, "analysis.commands.COMMANDS"),
                         (all_commands(), "litelvlm.cli.all_commands()")):
        assert all(isinstance(c, Command) for c in table.values()), where
        out += [(f"{where}[{n!r}]", c.module, c.load, ModuleType) for n, c in table.items()]
    out += _study_runs()
    assert all(isinstance(ref, Lazy) for ref in REGISTERED)
    out += [(f"families.REGISTERED[{i}]", str(ref), ref.get, FamilyCard) for i, ref in enumerate(REGISTERED)]
    for c in cards():
        out += [(f"{c.name} card's {p}", str(ref), ref.get, None) for p in PIECES
                if (ref := getattr(c, p)) is not None]
    return out


def test_every_named_import_resolves():
    """The one test that imports every typed reference of the library and the studies: the registries'
    entries (each of the type it must be: a study's run function a callable) and every literal ``Lazy(...)``
    of the code."""
    literal, dynamic = _literal_lazies()
    assert len(literal) > 25  # the scan saw the references
    assert sorted(set(dynamic)) == sorted(DYNAMIC_LAZY), "a Lazy made from names known only at run time"
    failures = []
    for where, named, get, kind in [*((w, str(r), r.get, None) for w, r in literal), *_registered()]:
        try:
            value = get()
        except (ImportError, AttributeError) as e:
            failures.append(f"{where}: {named}: {type(e).__name__}: {e}")
            continue
        if kind is not None and not isinstance(value, kind):
            failures.append(f"{where}: {named} is a {type(value).__name__}, not a {kind.__name__}")
        if kind is ModuleType and not (callable(getattr(value, "add_arguments", None))
                                       and callable(getattr(value, "run", None))):
            failures.append(f"{where}: {named} defines no add_arguments(parser) and run(args)")
    assert failures == [], "\n".join(failures)


def test_the_entry_points_resolve():
    """``pyproject.toml``'s entry points (``module:attribute`` is the packaging standard's own form): the
    script is the command, each ``litelvlm.commands`` group a table of typed subcommands, and the installed
    metadata says the same."""
    from importlib.metadata import entry_points

    from litelvlm.cli import ENTRY_POINT_GROUP, main
    from litelvlm.commands import Command

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert Lazy.named(project["scripts"]["litelvlm"]).get() is main
    group = project["entry-points"][ENTRY_POINT_GROUP]
    assert group
    for target in group.values():
        table = Lazy.named(target).get()
        assert table and all(isinstance(c, Command) for c in table.values()), target
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed == group, "reinstall (pip install -e .): the installed entry points differ"


def _lazy_export_modules() -> list[str]:
    """The packages of the library and the studies that export names through a module ``__getattr__`` (one
    of their own, or :func:`litelvlm.lazy.lazy_exports`')."""
    out = []
    for path in sorted(p for pkg in ("litelvlm", "analysis") for p in (ROOT / pkg).rglob("__init__.py")):
        tree = parsed(path)
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
            getattr(t, "id", None) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
        if "__getattr__" in defined:
            out.append(".".join(path.relative_to(ROOT).parent.parts))
    return out


def test_every_lazy_export_resolves():
    """A package's names imported on first use (its module ``__getattr__``): every one of its ``__all__``."""
    modules = _lazy_export_modules()
    assert {"litelvlm.glamm", "litelvlm.qwen", "litelvlm.unipixel", "litelvlm.explore",
            "analysis.video"} <= set(modules)
    missing = []
    for name in modules:
        package = importlib.import_module(name)
        for attr in package.__all__:
            try:
                getattr(package, attr)
            except (ImportError, AttributeError) as e:
                missing.append(f"{name}.{attr}: {e}")
    assert missing == []
