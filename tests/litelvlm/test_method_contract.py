"""The method contract (litelvlm.method), the lazy registry (litelvlm.methods) and the import structure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.method import Method, Option
from litelvlm.method_stage import STAGES
from litelvlm.methods import TABLE, available_methods, describe, get_method, method_names
from tests.fixtures.sources import parsed

LIB = Path(__file__).resolve().parents[2] / "litelvlm"


def test_every_table_entry_is_a_method():
    for name in method_names():
        m = get_method(name)
        assert isinstance(m, Method) and m.name == name and m.description == describe(name) == TABLE[name][1]
        assert m.stage.name in STAGES and callable(m.select)
        assert (m.forward is not None) == (m.stage.name in ("llm-layer", "llm-stages")), name
        assert m.kind == ("clip" if m.stage.name == "clip" else "llm")
        stages = m.schedule(64, 576, 32,
                            **({"layer": 3} if m.options and m.options[0].name == "layer" else {}))
        assert stages[0][0] == 0 and all(a[0] < b[0] for a, b in zip(stages, stages[1:])), (name, stages)
        # stages that shrink, from at least K tokens at the input (SparseVLM: N, VScan: 3K/2)
        if m.stage.name == "llm-stages":
            assert 64 <= stages[0][1] <= 576 and all(a[1] > b[1] for a,
                                                     b in zip(stages, stages[1:])), (name, stages)
        else:
            # a tower that gives every token back (IPCV): all N at the input
            full = m.stage.name == "llm-layer" or m.restores_tokens
            assert stages[0][1] == (576 if full else 64), (name, stages)
    assert available_methods("clip") == sorted(n for n in TABLE if get_method(n).stage.name == "clip")
    assert [n for n in TABLE if get_method(n).baseline] == ["none"]
    assert sorted(n for n in TABLE if get_method(n).oracle) == ["llm-attention", "saliency"]
    assert get_method("fastv").schedule(64, 576, 32, layer=3) == ((0, 576), (3, 64))
    assert {"none", "fastv", "sparsevlm", "divprune"} <= set(available_methods("llm"))


def test_none_is_an_ordinary_method():
    m = get_method("none")
    assert m.stage.name == "llm-input" and m.forward is None and not m.needs_text and m.options == ()
    ctx = SimpleNamespace(num_visual=5)
    assert m.select(ctx, 5).indices.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(LiteLVLMError, match="keeps all 5 tokens"):
        m.select(ctx, 4)


def test_unknown_names_get_suggestions():
    with pytest.raises(LiteLVLMError, match=r"unknown method 'litelvm' \(did you mean 'litelvlm'"):
        get_method("litelvm")
    with pytest.raises(LiteLVLMError, match="known methods: cdpruner, clip_topsim, dart"):
        get_method("zzz")


def test_methods_map_their_own_options():
    args = SimpleNamespace(fastv_layer=3, attention_layer=None, attention_queries="text")
    assert get_method("fastv").options_from(args) == {"layer": 3}
    assert get_method("llm-attention").options_from(args) == {"queries": "text"}  # None: the method's default
    assert get_method("dart").options_from(args) == {} and get_method("litelvlm").options_from(args) == {}
    assert get_method("fastv").options == (Option("layer", "fastv_layer", "1..L", default=2,
                                                  help="FastV's K: prune after LLM layer K-1"),)


def test_layer_options_are_checked_against_the_model():
    args = SimpleNamespace(fastv_layer=32, attention_layer=32)
    # FastV's K may be L (prunes after the last layer)
    assert get_method("fastv").layer_errors(args, 32) == []
    assert get_method("llm-attention").layer_errors(args, 32) == [
        "--attention-layer 32: llm-attention's layer must be in 0..31 for this model (32 decoder layers)"]
    assert get_method("fastv").layer_errors(SimpleNamespace(fastv_layer=0), 32) == [
        "--fastv-layer 0: fastv's layer must be in 1..32 for this model (32 decoder layers)"]
    assert get_method("dart").layer_errors(args, 2) == []  # no layer option fed by a flag
    with pytest.raises(ValueError, match="layers must be one of"):
        Option("layer", "x", "1..N")


def test_contract_refuses_a_mismatched_stage():
    with pytest.raises(ValueError, match="stage must be one of"):
        Method("llm", print)
    with pytest.raises(ValueError, match="a forward is needed"):
        Method("llm-layer", print)
    with pytest.raises(ValueError, match="a forward is not used"):
        Method("clip", print, forward=print)


def test_context_heavy_description_matches_its_ratio():
    from litelvlm.methods.litelvlm import CONTEXT_HEAVY_RATIO

    assert f"{CONTEXT_HEAVY_RATIO:.0%} of K to context tokens first" in describe("litelvlm-ctx")


def test_listing_methods_imports_no_torch():
    code = ("import sys; from litelvlm.cli import main; rc = main(['select', '--list-methods']); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines] == method_names()
    assert any(line.startswith("fastv") and "FastV" in line for line in lines)


# -- import structure ----------------------------------------------------------------------------------------

def _package(module: str) -> str:
    """``litelvlm.methods.tome`` -> ``litelvlm.pruning``; top-level modules are their own package."""
    return ".".join(module.split(".")[:2])


def _imports(path: Path) -> set[str]:
    """Modules of ``litelvlm`` that ``path`` imports anywhere (function bodies included), outside
    ``if TYPE_CHECKING:`` blocks."""
    rel = path.relative_to(LIB.parent).with_suffix("")
    parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    here = parts if rel.name == "__init__" else parts[:-1]
    tree = parsed(path)
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("litelvlm")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("litelvlm"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names
                        if (LIB.parent / f"{mod}.{a.name}".replace(".", "/")).exists()
                        or (LIB.parent / (f"{mod}.{a.name}".replace(".", "/") + ".py")).exists()}
    return out


def test_no_import_circle_across_packages():
    """The packages of ``litelvlm`` (``litelvlm.clip``, ``litelvlm.pruning``, ``litelvlm.lvlm``, ...) import
    each other without a circle (every import counted, lazy ones too; the registry's importlib is not)."""
    edges: dict[str, set[str]] = {}
    for path in LIB.rglob("*.py"):
        src = _package(".".join(path.relative_to(LIB.parent).with_suffix("").parts))
        for mod in _imports(path):
            dst = _package(mod)
            if dst != src and dst != "litelvlm.__init__":
                edges.setdefault(src, set()).add(dst)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(p for p in edges if p in reach(p))
    assert not circles, {p: sorted(edges[p]) for p in circles}
    # the walk sees the real arrows: the LLM-side methods use the selection types, the selectors CLIP's
    # traces, the GLaMM family the shared LLM layer, CLIP and the selectors; the circle of earlier versions
    # (the registry imported litelvlm.lvlm to register its methods) is gone, and nothing shared reaches a
    # family's package
    assert "litelvlm.pruning" in edges["litelvlm.lvlm"] and "litelvlm.clip" in edges["litelvlm.pruning"]
    assert {"litelvlm.lvlm", "litelvlm.clip", "litelvlm.pruning"} <= edges["litelvlm.glamm"]
    assert "litelvlm.lvlm" not in reach("litelvlm.pruning")
    for shared in ("litelvlm.lvlm", "litelvlm.pruning", "litelvlm.clip", "litelvlm.methods",
                   "litelvlm.registry.families"):
        assert "litelvlm.glamm" not in reach(shared), shared


def test_the_baseline_is_the_one_baseline_method():
    """The studies form their ratios against ``litelvlm.methods.BASELINE``: the one method declared with
    ``baseline=True``, keeping all N tokens in raster order."""
    from litelvlm.methods import BASELINE, get_method, method_names

    assert [n for n in method_names() if get_method(n).baseline] == [BASELINE]
    assert get_method(BASELINE).stage.name == "llm-input" and not get_method(BASELINE).oracle


def test_a_layer_option_nobody_gave_is_checked_at_its_default():
    """``eval-video`` gives no method option: IPCV + DART's LLM layer is then its default, 3, which a
    2-layer decoder lacks; a given value is checked as given."""
    spec = get_method("ipcv+dart")
    assert spec.layer_errors(SimpleNamespace(), 2) == [
        "--ipcv-llm-layer 3: ipcv+dart's layer must be in 1..2 for this model (2 decoder layers)"]
    assert spec.layer_errors(SimpleNamespace(ipcv_llm_layer=None), 4) == []
    assert spec.layer_errors(SimpleNamespace(ipcv_llm_layer=2), 2) == []
    assert get_method("vitcop").layer_errors(SimpleNamespace(), 2) == []   # no default: scaled to the model
