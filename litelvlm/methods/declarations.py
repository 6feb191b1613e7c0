"""What each method module declares about its method, read from the module's source without importing it.

A method is declared once, in its own module, as ``NAME = Method("stage", select, ..., name="...",
description="...", options=(Option(...), ...))``; a backbone's variant adds ``backbone="..."`` (it takes its
method's options). Listing the methods, building their command-line flags and writing their table must not
load torch (``litelvlm --help`` does all three), so :func:`read_declarations` reads those keywords from each
module's syntax tree: literals, ``+`` of strings, tuples, ``Option(...)`` and names bound to such values at
the top of the module or imported from a module of the package. Nothing is evaluated; a keyword outside that
subset is an error naming the file and line. Importing the module later gives the same values (``get_method``
checks).
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..method import Option

#: the package folder of the methods, and the package the relative imports start from
PACKAGE = Path(__file__).resolve().parent
_ROOT = PACKAGE.parent  # litelvlm/
#: the keywords of a ``Method(...)`` call the light registry reads
READ = ("name", "description", "options", "backbone")
#: the callables a declaration may call, and the names of the value types an option may take
_CALLS = {"Option": Option}
_TYPES = {"int": int, "float": float, "str": str}


class DeclarationError(Exception):
    """A method declaration the light registry cannot read (names the file and line)."""


@dataclass(frozen=True)
class Declaration:
    """One ``Method(...)`` of a module: its registered name, description, options, the backbone of a variant
    ("" for the method itself), its stage's name, and where it lives (module and attribute)."""

    name: str
    description: str
    options: tuple[Option, ...]
    backbone: str
    stage: str
    module: str
    attribute: str


class _Unfoldable(Exception):
    pass


@dataclass(frozen=True)
class _Imported:
    """A name a module imports from another module of the package, read from there only when a declaration
    needs it."""

    module: str
    name: str


def _module_path(module: str) -> Path:
    """The source file of ``litelvlm.<...>`` module ``module``."""
    parts = module.split(".")[1:]
    path = _ROOT.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


#: a top-level line that starts what a declaration may read: an import from, or an assignment
_READ_LINE = re.compile(r"(from |[A-Za-z_]\w*\s*(:[^=]*)?=[^=])")


def _parse(path: Path) -> ast.Module:
    """The syntax tree of ``path``'s top-level imports and assignments (the other lines blanked, so line
    numbers hold; the whole file where the cut does not parse): a fraction of parsing the whole file."""
    text = path.read_text()
    kept, keep = [], False
    for line in text.splitlines():
        if line[:1] not in ("", " ", "\t", ")", "]", "}", "#"):
            keep = bool(_READ_LINE.match(line))
        kept.append(line if keep else "")
    try:
        return ast.parse("\n".join(kept), str(path))
    except SyntaxError:
        return ast.parse(text, str(path))


def _absolute(module: str, node: ast.ImportFrom) -> str:
    base = module.split(".")[: len(module.split(".")) - node.level] if node.level else []
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


@functools.cache
def _constants(module: str) -> tuple[dict[str, Any], ast.Module]:
    """The top-level names of ``module`` bound to foldable values, and its syntax tree."""
    tree = _parse(_module_path(module))
    env: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("litelvlm.")):
            source = _absolute(module, node)
            if not source.startswith("litelvlm") or not _module_path(source).exists():
                continue
            for alias in node.names:
                env[alias.asname or alias.name] = _Imported(source, alias.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                try:
                    env[targets[0].id] = _fold(node.value, env)
                except _Unfoldable:
                    pass
    return env, tree


def _fold(node: ast.expr, env: dict[str, Any]) -> Any:
    """The value of ``node`` in the declaration subset (raises :class:`_Unfoldable` outside it)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            value = env[node.id]
            if isinstance(value, _Imported):
                source = _constants(value.module)[0]
                if value.name not in source or isinstance(source[value.name], _Imported):
                    raise _Unfoldable(f"{value.module}.{value.name}")
                return source[value.name]
            return value
        if node.id in _TYPES:
            return _TYPES[node.id]
        raise _Unfoldable(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _fold(node.left, env) + _fold(node.right, env)
    if isinstance(node, ast.Tuple):
        return tuple(_fold(e, env) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS:
        if any(kw.arg is None for kw in node.keywords):
            raise _Unfoldable("**")
        return _CALLS[node.func.id](*(_fold(a, env) for a in node.args),
                                    **{kw.arg: _fold(kw.value, env) for kw in node.keywords})
    raise _Unfoldable(type(node).__name__)


def _declaration(module: str, attribute: str, call: ast.Call, env: dict[str, Any], where: str) -> Declaration:
    values: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg in READ:
            try:
                values[kw.arg] = _fold(kw.value, env)
            except _Unfoldable as e:
                raise DeclarationError(f"{where}: {attribute}'s {kw.arg}= must be literal text, tuples, "
                                       f"Option(...) or names bound to them (found {e})") from None
    if not call.args or not isinstance(call.args[0], ast.Constant):
        raise DeclarationError(f"{where}: {attribute} must name its stage first, as a literal")
    if not values.get("description"):
        raise DeclarationError(f"{where}: {attribute} declares name= without a description=")
    return Declaration(values["name"], values["description"], tuple(values.get("options", ())),
                       values.get("backbone", ""), call.args[0].value, module, attribute)


@functools.cache
def read_declarations() -> tuple[Declaration, ...]:
    """Every ``Method(..., name=...)`` declared at the top of a module of this package, in file order."""
    out = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name.startswith("_") or path.name == "declarations.py" or "Method(" not in path.read_text():
            continue
        module = f"litelvlm.methods.{path.stem}"
        env, tree = _constants(module)
        for node in tree.body:
            call = node.value if isinstance(node, ast.Assign) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Method"
                    and any(kw.arg == "name" for kw in call.keywords)):
                out.append(_declaration(module, node.targets[0].id, call, env, f"{path.name}:{node.lineno}"))
    return tuple(out)
