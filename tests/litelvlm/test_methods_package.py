"""One home for every method: each pruning method, whatever its stage, is one module of ``litelvlm/methods/``,
its Qwen variant the module ``<name>_qwen`` beside it, its command-line options declared in it, the registry
beside them; ``litelvlm/lvlm/`` holds only the family contract (no method is declared there or anywhere
else)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from litelvlm import methods
from litelvlm.method import Method
from litelvlm.methods.options import declared_options

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "litelvlm" / "methods"
NOT_METHODS = {"__init__", "options", "select"}


def _method_declarations(path: Path) -> list[str]:
    """Names assigned a ``Method(...)`` call at a module's top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id in ("Method", "replace"):
                out += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return out


def _targets() -> list[tuple[str, str]]:
    rows = [target for target, _ in methods.TABLE.values()] + [target for target,
                                                               _ in methods.VARIANTS.values()]
    return [tuple(t.split(":")) for t in rows]


def test_every_registered_method_is_a_module_of_the_package():
    for module, attr in _targets():
        assert "." not in module, (f"{module}: a registry target names a module of litelvlm/methods/ by its "
                                   "name alone")
        path = PACKAGE / f"{module}.py"
        assert path.is_file(), f"{module}:{attr} is no module of litelvlm/methods/"
        assert attr in _method_declarations(path), f"{path.name} declares no Method {attr}"


def test_every_module_of_the_package_is_registered():
    registered = {module for module, _ in _targets()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - NOT_METHODS
    assert modules - registered == set(), "modules of litelvlm/methods/ that the registry does not name"


def test_no_method_is_declared_outside_the_package():
    outside = {}
    for path in (ROOT / "litelvlm").rglob("*.py"):
        if PACKAGE in path.parents or path.name == "method.py":
            continue
        if names := _method_declarations(path):
            outside[str(path.relative_to(ROOT))] = names
    assert outside == {}, "Method declarations outside litelvlm/methods/"
    assert sorted(p.stem for p in (ROOT / "litelvlm" / "lvlm").glob("*.py") if p.stem in
                  {m for m, _ in _targets()}) == []


def test_a_qwen_variant_sits_beside_its_method():
    for (name, backbone), (target, _) in methods.VARIANTS.items():
        module = target.split(":")[0]
        assert backbone == "qwen2.5-vl" and module.endswith("_qwen"), f"{name}'s variant {module}"
        base = methods.TABLE[name][0].split(":")[0]
        assert module == f"{base}_qwen", f"{name}'s Qwen variant is {module}, not {base}_qwen beside {base}"


@pytest.mark.parametrize("name", methods.method_names())
def test_options_are_declared_in_the_method_module(name):
    module = methods.TABLE[name][0].split(":")[0]
    spec = methods.get_method(name)
    assert isinstance(spec, Method)
    assert spec.options == declared_options(module), f"{module}.py: its OPTIONS read statically differ"
    raw = getattr(__import__(f"litelvlm.methods.{module}", fromlist=["x"]),
                  methods.TABLE[name][0].split(":")[1])
    assert raw.options == spec.options, f"{module}.py: the Method does not carry its module's OPTIONS"
    for backbone in {bb for (n, bb) in methods.VARIANTS if n == name}:
        assert methods.get_method(name, backbone).options == spec.options


def test_the_registry_declares_no_options_of_its_own():
    assert not hasattr(methods, "OPTIONS")
    assert {o.dest for o in methods.method_option_list()} == {"random_deep_layer", "random_deep_ratio",
                                                              "fastv_layer", "v2drop_layers", "v2drop_ratios",
                                                              "attention_layer", "attention_queries"}
