"""The tests mirror the code: every test file names the module it tests, and set-up lives in one place.

A test of ``litelvlm/x/y.py`` (or of the package ``litelvlm/x/y/``) is ``tests/litelvlm/x/test_y.py`` or
``tests/litelvlm/x/test_y_<aspect>.py``; the same for ``analysis/`` and ``benchmarks/``. Tests that no single
module owns sit in the cross-cutting folders below. Set-up shared between test files is a fixture
(``tests/conftest.py``) or a helper of ``tests/fixtures/``, never a copy: no two files under tests/ define a
helper with the same body.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
CODE = ("litelvlm", "analysis", "benchmarks")

#: folders for tests that no single module owns
CROSS_CUTTING = {
    "project": "the repository's own rules: lint, module sizes, imports, README, docs' generated tables, "
    "notebooks",
    "end_to_end": "the `litelvlm` command across its subcommands: bad and odd inputs, faults, resuming, "
    "output",
}

#: helpers allowed to share a body, with the reason
SAME_BODY_ALLOWED = {
    "rotate_half": "a statement-by-statement transcription: each file transcribes (and cites) its own "
    "official file",
    "tower": "a cache of the file's own `Tower` class: the same words, a different class in each file",
}


def _test_files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)


def _names_a_module(path: Path) -> bool:
    """tests/<dirs>/test_<name>.py: <dirs> is a package of the code and <name> starts with one of its
    modules."""
    rel = path.relative_to(TESTS)
    folder = ROOT.joinpath(*rel.parts[:-1])
    if rel.parts[0] not in CODE or not folder.is_dir():
        return False
    name = path.stem[len("test_"):]
    words = name.split("_")
    for i in range(len(words), 0, -1):
        y = "_".join(words[:i])
        if (folder / f"{y}.py").is_file() or (folder / y / "__init__.py").is_file():
            return True
    return False


def test_every_test_file_sits_under_the_path_of_its_module_or_a_cross_cutting_folder():
    files = _test_files()
    assert len(files) > 100  # the scan saw the suite
    misplaced = [str(p.relative_to(ROOT)) for p in files
                 if not (p.relative_to(TESTS).parts[0] in CROSS_CUTTING and len(p.relative_to(TESTS).parts)
                         == 2)
                 and not _names_a_module(p)]
    assert not misplaced, ("test files that name no module of litelvlm/, analysis/ or benchmarks/ and sit in "
                           f"no cross-cutting folder ({', '.join(CROSS_CUTTING)}): {misplaced}")


def test_every_folder_of_tests_is_a_package():
    """tests/ is a package, so basenames may repeat (tests/litelvlm/glamm/test_pipeline.py and
    tests/litelvlm/unipixel/test_pipeline.py) and tests/ itself never goes on sys.path."""
    folders = {p.parent for p in _test_files()} | {TESTS}
    missing = sorted(str(d.relative_to(ROOT)) for d in folders if not (d / "__init__.py").is_file())
    assert not missing, f"folders without __init__.py: {missing}"


def test_no_test_file_left_at_the_top_of_tests():
    assert not sorted(p.name for p in TESTS.glob("test_*.py"))


def _is_alias(fn: ast.FunctionDef) -> bool:
    """A fixture that returns one of its arguments under the test module's own name (``def
    pipe(tiny_glamm)``)."""
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    args = {a.arg for a in fn.args.args}
    return len(body) == 1 and isinstance(body[0], ast.Return) and isinstance(body[0].value, ast.Name) \
        and body[0].value.id in args


def _helper_bodies() -> dict[str, list[str]]:
    """{normalized body: ["file::name", ...]} of the top-level non-test functions of every file under tests/
    (tests/golden/ holds standalone generator scripts run in the official code's environment: left out)."""
    found = defaultdict(list)
    for path in sorted(TESTS.rglob("*.py")):
        if "golden" in path.relative_to(TESTS).parts or "__pycache__" in path.parts:
            continue
        for fn in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name.startswith("test_") \
                    or _is_alias(fn) or fn.name in SAME_BODY_ALLOWED:
                continue
            body = fn.body[1:] if ast.get_docstring(fn) is not None else fn.body
            key = ast.dump(fn.args) + ast.dump(ast.Module(body=body, type_ignores=[]))
            found[key].append(f"{path.relative_to(ROOT)}::{fn.name}")
    return found


def test_no_two_files_copy_a_helper():
    copies = [names for names in _helper_bodies().values() if len({n.split("::")[0] for n in names}) > 1]
    assert not copies, ("the same helper in several files (make it a fixture or a tests/fixtures helper): "
                        f"{copies}")


def test_the_copy_check_sees_a_copy(tmp_path):
    """The check compares bodies, not names: a renamed copy is found, a fixture alias is not a copy."""
    a = ast.parse("def f(x):\n    '''doc'''\n    return x + 1\n").body[0]
    b = ast.parse("def g(x):\n    return x + 1\n").body[0]
    alias = ast.parse("def pipe(tiny_glamm):\n    return tiny_glamm\n").body[0]
    keys = [ast.dump(fn.args) + ast.dump(ast.Module(body=fn.body[1:] if ast.get_docstring(fn) else fn.body,
                                                    type_ignores=[])) for fn in (a, b)]
    assert keys[0] == keys[1] and _is_alias(alias) and not _is_alias(a)
