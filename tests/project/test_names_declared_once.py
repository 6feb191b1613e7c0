"""A set of names is declared in one module: the values a switch or an option takes (``--attn``'s kernels, the
CLIP texts, the video arrangements, the REFER datasets), a table's columns. Every other module imports that
declaration, so a name added in one place cannot be missing from another. The library's switches live in
:mod:`litelvlm.switches`, which imports nothing heavy, so a command's light option module reads the same tuple
the library checks.

Two rules over ``litelvlm/``, ``analysis/`` and ``benchmarks/``:

* a module-level tuple, list or set of two or more strings, or an option's literal ``choices=``, is a
  declaration; no two modules make the same one;
* no literal elsewhere (a keyword argument, the right side of ``in`` / ``not in``) spells out the names of a
  declaration: it imports them (pandas' named aggregations, ``agg(union=("union", "sum"))``, are pairs of a
  column and a function, not names).

The same holds for numbers: a literal run of three or more numbers, one of them a fraction (a normalisation's
channel means, say), is written in one place (:mod:`litelvlm.models.channel_stats`).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

from tests.fixtures.sources import ROOT, modules, parsed

#: sets of names that more than one module spells for a concept of its own, with why they are not one
DIFFERENT_CONCEPTS: dict[frozenset[str], str] = {
    frozenset({"It is [SEG].", "Sure, [SEG].", "Sure, it is [SEG].",
               "Sure, the segmentation result is [SEG].", "[SEG]."}):
        "the answers of two official codes, each transcribed from its own repository and tested against it: "
        "GLaMM's (litelvlm.data.templates.ANSWER_LIST) and Sa2VA's (litelvlm.sa2va.protocol.ANSWERS_LIST)",
    frozenset({"eager", "sdpa"}):
        "the attention kernels of other models than a family's (flash is the LLM's, on CUDA): the toy ViT's "
        "(litelvlm.toy.options) and the ones two CPU/GPU benchmarks of SAM and of the prefill compare",
    frozenset({"float32", "bfloat16"}):
        "two commands' own --dtype: the CLIP studies' (analysis.common.options.clip_args.CLIP_DTYPES) and "
        "the dtypes benchmarks/measure_numerics.py runs GLaMM in",
    frozenset({"clip", "llm"}):
        "a method's kind (litelvlm.methods.available_methods(kind): where its stage acts) and where "
        "LiteLVLM's similarity part comes from (litelvlm.switches.CLIP_SIMILARITIES)",
    frozenset({"tiny", "scaled"}):
        "two families' own test presets that share their names: GLaMM's (litelvlm.glamm.config.TEST_PRESETS) "
        "and Qwen2.5-VL's (litelvlm.qwen.checkpoint.TEST_PRESETS)",
}


def _names(node: ast.AST) -> frozenset[str] | None:
    """The strings of a literal tuple, list or set of two or more distinct strings; else None."""
    if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return None
    try:
        names = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):   # not a literal
        return None
    if all(isinstance(n, str) for n in names) and len(set(names)) >= 2:
        return frozenset(names)
    return None


def _declarations_and_spellings(path: Path) -> tuple[list[tuple[frozenset[str], str]],
                                                      list[tuple[frozenset[str], str]]]:
    """(declarations, other literals) of one file: each as (its names, ``path:line what``)."""
    where = path.relative_to(ROOT)
    declared, spelled, seen = [], [], set()
    tree = parsed(path)
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
            node.target if isinstance(node, ast.AnnAssign) else None)
        if isinstance(target, ast.Name) and target.id != "__all__" and (names := _names(node.value)):
            declared.append((names, f"{where}:{node.lineno} {target.id}"))
            seen.add(id(node.value))
    for node in ast.walk(tree):   # pandas' named aggregations are (column, function) pairs, not names
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("agg", "aggregate"):
            seen.update(id(k.value) for k in node.keywords)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and (names := _names(node.value)) and id(node.value) not in seen:
            (declared if node.arg == "choices" else spelled).append(
                (names, f"{where}:{node.value.lineno} {node.arg}="))
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.In, ast.NotIn)) and (names := _names(right)):
                    spelled.append((names, f"{where}:{right.lineno} in"))
    return declared, spelled


def _scan() -> tuple[dict[frozenset[str], list[str]], dict[frozenset[str], list[str]]]:
    declared, spelled = defaultdict(list), defaultdict(list)
    for path in modules("litelvlm", "analysis", "benchmarks"):
        ds, ss = _declarations_and_spellings(path)
        for names, place in ds:
            declared[names].append(place)
        for names, place in ss:
            spelled[names].append(place)
    return declared, spelled


def test_each_set_of_names_is_declared_in_one_module():
    declared, _ = _scan()
    assert len(declared) > 40 and frozenset({"eager", "sdpa", "flash"}) in declared   # the scan saw them
    twice = {tuple(sorted(names)): places for names, places in declared.items()
             if len({p.split(":")[0] for p in places}) > 1 and names not in DIFFERENT_CONCEPTS}
    assert not twice, ("names declared in more than one module (import the one declaration; "
                       f"litelvlm.switches holds the library's switches, light for the commands): {twice}")


def test_no_literal_spells_out_a_declaration():
    declared, spelled = _scan()
    respelled = {tuple(sorted(names)): places for names, places in spelled.items()
                 if names in declared and names not in DIFFERENT_CONCEPTS}
    assert not respelled, f"literals that spell a declared set of names (import it): {respelled}"


def test_the_listed_coincidences_still_stand():
    """Each entry of :data:`DIFFERENT_CONCEPTS` is still declared in two modules (else it goes)."""
    declared, spelled = _scan()
    assert DIFFERENT_CONCEPTS
    for names in DIFFERENT_CONCEPTS:
        assert len({p.split(":")[0] for p in declared.get(names, []) + spelled.get(names, [])}) > 1, names


def _number_runs() -> dict[tuple, list[str]]:
    """Every literal tuple or list of three or more numbers with a fraction among them: numbers -> where."""
    found: dict[tuple, list[str]] = defaultdict(list)
    for path in modules("litelvlm", "analysis", "benchmarks"):
        for node in ast.walk(parsed(path)):
            if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) >= 3 and all(
                    isinstance(e, ast.Constant) and type(e.value) in (int, float) for e in node.elts) and any(
                    type(e.value) is float for e in node.elts):
                found[tuple(e.value for e in node.elts)].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_each_run_of_numbers_is_written_once():
    found = _number_runs()
    assert (0.485, 0.456, 0.406) in found   # the scan saw ImageNet's means
    twice = {numbers: places for numbers, places in found.items() if len(places) > 1}
    assert not twice, f"the same numbers written in more than one place (import the one constant): {twice}"


def test_the_scan_finds_a_copy_in_each_form(tmp_path, monkeypatch):
    """A second module-level tuple, an inline ``choices=`` list and a literal after ``in`` are each found."""
    from tests.fixtures import sources

    package = tmp_path / "litelvlm"
    package.mkdir()
    (package / "a.py").write_text('KERNELS = ("x", "y")\n')
    (package / "b.py").write_text('OTHER = ["y", "x"]\n')
    (package / "c.py").write_text('f(choices=["x", "y"])\nif k not in ("y", "x"):\n    pass\n')
    monkeypatch.setattr(sources, "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    declared, spelled = _scan()
    assert sorted(declared[frozenset("xy")]) == ["litelvlm/a.py:1 KERNELS", "litelvlm/b.py:1 OTHER",
                                                 "litelvlm/c.py:1 choices="]
    assert spelled[frozenset("xy")] == ["litelvlm/c.py:2 in"]
