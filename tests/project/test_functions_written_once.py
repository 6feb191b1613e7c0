"""A function's body is written in one place: two module-level functions or methods of ``litelvlm/``,
``analysis/`` or ``benchmarks/`` whose bodies (docstring aside) are the same code are one concept written
twice, and one imports (or inherits) the other. Small bodies (under :data:`MIN_NODES` syntax nodes: an
attribute read, a one-call delegation) and functions nested in another are left out.

Where the same code reads names each module binds to its own object (each method variant's default layer,
each family's refusals), the two are different concepts; :data:`DIFFERENT_CONCEPTS` lists them with why.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.fixtures.sources import ROOT, modules, parsed

#: the smallest body (syntax nodes, docstring aside) that counts
MIN_NODES = 15
#: (module, function) pairs whose same code is of two concepts, with why
DIFFERENT_CONCEPTS: dict[frozenset[tuple[str, str]], str] = {
    frozenset({("litelvlm/methods/ivc_prune.py", "ivc_schedule"),
               ("litelvlm/methods/ivc_prune_qwen.py", "ivc_qwen_schedule")}):
        "each variant's schedule from its own default_layer (LLaVA's 16 of 32 layers, Qwen2.5-VL's 16 of 28 "
        "and 22 of 36), each transcribed from its own official file",
    frozenset({("litelvlm/sa2va/video_eval.py", "offered_methods"),
               ("litelvlm/unipixel/video_eval.py", "offered_methods")}):
        "each family's video path offers what its own method_error allows",
    frozenset({("litelvlm/sa2va/video_eval.py", "method_errors"),
               ("litelvlm/unipixel/video_eval.py", "method_errors")}):
        "each family's video path refuses by its own method_error",
    frozenset({("litelvlm/videoglamm/video_runner.py", "expression"),
               ("litelvlm/video/pipeline_runner.py", "expression")}):
        "each video runner's one expression through its own ground and result (VideoGLaMM's runs its clips "
        "and frame allocation; the pipeline runner a family's ground_many)",
    frozenset({("litelvlm/glamm/cost.py", "count"), ("litelvlm/qwen/cost.py", "count")}):
        "each family's cost rows through its own count_rows (GLaMM's and the Qwen2.5-VL families')",
    frozenset({("litelvlm/clip/base.py", "num_patches"), ("litelvlm/clip/deferred.py", "num_patches"),
               ("litelvlm/clip/traces.py", "num_patches")}):
        "the patches of each class's own grid: the CLIP model contract's, the light stand-in's that answers "
        "before the model loads (it imports no torch, so it cannot extend the contract), one vision trace's",
}


def _body(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body


def _functions(tree: ast.Module):
    """Module-level functions and the methods of module-level classes (not nested ones)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from (n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def written_twice(paths) -> dict[str, list[tuple[str, str, int]]]:
    """Each body of at least :data:`MIN_NODES` nodes written in more than one place -> its places."""
    places: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for path in paths:
        for fn in _functions(parsed(path)):
            body = _body(fn)
            if sum(1 for stmt in body for _ in ast.walk(stmt)) < MIN_NODES:
                continue
            rel = Path(path).relative_to(ROOT).as_posix() if Path(path).is_relative_to(ROOT) else str(path)
            places[ast.dump(ast.Module(body=body, type_ignores=[]))].append((rel, fn.name, fn.lineno))
    return {k: v for k, v in places.items() if len(v) > 1}


def test_no_function_body_is_written_twice():
    found = []
    for where in written_twice(modules("litelvlm", "analysis", "benchmarks")).values():
        if frozenset((p, n) for p, n, _ in where) not in DIFFERENT_CONCEPTS:
            found.append(", ".join(f"{p}:{line} {n}" for p, n, line in where))
    assert not found, "the same function body in several places (import or inherit one):\n" + "\n".join(found)


def test_the_listed_coincidences_still_stand():
    """A pair listed as two concepts that no longer shares its code is taken off the list."""
    standing = {frozenset((p, n) for p, n, _ in where)
                for where in written_twice(modules("litelvlm", "analysis", "benchmarks")).values()}
    assert not set(DIFFERENT_CONCEPTS) - standing, set(DIFFERENT_CONCEPTS) - standing


def test_the_scan_finds_a_copy_and_leaves_small_and_nested_bodies(tmp_path):
    body = ("    if not values:\n        return 0.0\n    total = sum(v * v for v in values)\n"
            "    return float(total) / len(values) + offset\n")
    (tmp_path / "a.py").write_text(f"def mean_square(values, offset=0.0):\n    \"\"\"One.\"\"\"\n{body}")
    indented = body.replace("    ", "        ")
    (tmp_path / "b.py").write_text(f"class C:\n    def other(self, values, offset=0.0):\n{indented}"
                                   "\n\ndef small(x):\n    return x + 1\n")
    (tmp_path / "c.py").write_text("def small(y):\n    return x + 1\n\n\ndef outer():\n"
                                   f"    def mean_square(values, offset=0.0):\n{indented}")
    found = written_twice(sorted(tmp_path.glob("*.py")))
    assert [sorted((Path(p).name, n) for p, n, _ in w) for w in found.values()] == [
        [("a.py", "mean_square"), ("b.py", "other")]]
