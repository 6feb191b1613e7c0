"""A method's command-line options, read from its module's source without importing it.

Each method module declares ``OPTIONS = (Option(...), ...)`` beside its :class:`~litelvlm.method.Method`
(which takes ``options=OPTIONS``). The command line builds every method's flags before torch loads
(:func:`litelvlm.cli_args.method_flags`), so :func:`declared_options` evaluates that one assignment from the
module's source: its ``Option`` calls may use literals and the module's own literal constants (``DEFAULT_LAYER
= 2``) only. A module without ``OPTIONS`` declares none. ``tests/litelvlm/test_methods_package.py`` checks
that the declaration read here is the one the imported method carries.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from ..method import Option

HERE = Path(__file__).resolve().parent


@functools.cache
def declared_options(module: str) -> tuple[Option, ...]:
    """The ``OPTIONS`` that ``litelvlm/methods/<module>.py`` declares (empty: none), read without importing
    it."""
    tree = ast.parse((HERE / f"{module}.py").read_text(encoding="utf-8"))
    constants: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "OPTIONS":
                code = compile(ast.Expression(node.value), f"{module}.py", "eval")
                return tuple(eval(code, {"__builtins__": {}, "Option": Option, "str": str, "int": int,
                                         "float": float}, constants))
            try:
                constants[name] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return ()
