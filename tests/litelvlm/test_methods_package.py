"""One home for every method, one declaration each: each pruning method, whatever its stage, is one module of
``litelvlm/methods/`` whose ``Method(...)`` declares its name, description and options; its Qwen variant is
the module ``<name>_qwen`` beside it, declaring the same name with ``backbone=``. The registry is read from
those declarations without importing them (``litelvlm/methods/declarations.py``); ``litelvlm/lvlm/`` holds
only the family contract (no method is declared there or anywhere else)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from litelvlm import methods
from litelvlm.method import Method, Option
from litelvlm.methods import declarations as decl

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "litelvlm" / "methods"
NOT_METHODS = {"__init__", "declarations", "select"}


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
    """(module of the package, attribute) of every registry entry."""
    refs = [e.method for e in [*methods.TABLE.values(), *methods.VARIANTS.values()]]
    assert all(r.module.startswith("litelvlm.methods.") for r in refs), "a registry entry outside the package"
    return [(r.module.removeprefix("litelvlm.methods."), r.attribute) for r in refs]


def test_every_registered_method_is_a_module_of_the_package():
    for module, attr in _targets():
        assert "." not in module, f"{module}: a registry entry names a module of litelvlm/methods/ itself"
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
    for (name, backbone), entry in methods.VARIANTS.items():
        module = entry.method.module
        assert backbone == "qwen2.5-vl" and module.endswith("_qwen"), f"{name}'s variant {module}"
        declared = next(d for d in decl.read_declarations() if (d.name, d.backbone) == (name, backbone))
        assert declared.options == (), f"{name}'s variant declares options: the method's own apply"
        assert entry.options == methods.TABLE[name].options
        base = methods.TABLE[name].method.module
        assert module == f"{base}_qwen", f"{name}'s Qwen variant is {module}, not {base}_qwen beside {base}"


@pytest.mark.parametrize("name", methods.method_names())
def test_options_are_the_registry_entrys_and_name_keywords_of_select(name):
    """A method's options are declared once, by its module's Method (its variants take them), and each names a
    keyword of ``select`` whose default is the option's."""
    entry = methods.TABLE[name]
    spec = methods.get_method(name)
    assert isinstance(spec, Method) and spec.options == entry.options
    assert entry.method.get().options == entry.options, f"{entry.method}: its options are not the entry's"
    for variant in [spec] + [methods.get_method(name, bb) for n, bb in methods.VARIANTS if n == name]:
        assert variant.options == entry.options
        keywords = inspect.signature(variant.select).parameters
        for opt in entry.options:
            assert opt.name in keywords, f"{variant.select.__qualname__} takes no {opt.name}= ({opt.flag})"
            assert keywords[opt.name].default == opt.default, (
                f"{opt.flag}: default {opt.default!r}, but {variant.select.__qualname__}'s {opt.name}= "
                f"defaults to {keywords[opt.name].default!r}")


def test_the_registry_declares_no_options_of_its_own():
    assert not hasattr(methods, "OPTIONS") and not (PACKAGE / "options.py").exists()
    assert {o.dest for o in methods.method_option_list()} == {
        "random_deep_layer", "random_deep_ratio", "fastv_layer", "v2drop_layers", "v2drop_ratios",
        "attention_layer", "attention_queries", "vitcop_vision_ratio", "vitcop_cluster_percentage",
        "vitcop_shallow_layer", "vitcop_deep_layer", "ipcv_layer", "ipcv_as_layers", "ipcv_top_k",
        "ipcv_llm_layer"}


def test_what_the_registry_reads_is_what_each_module_declares():
    """The light registry (read from source) and the imported Methods agree on every entry and variant."""
    for name, backbone in [*((n, "") for n in methods.TABLE), *methods.VARIANTS]:
        entry = methods.VARIANTS[name, backbone] if backbone else methods.TABLE[name]
        method = entry.method.get()
        assert (method.name, method.backbone, method.description) == (name, backbone, entry.description)
        assert method.stage.name == entry.stage
        assert backbone or method.options == entry.options


def test_a_declaration_outside_the_readable_subset_is_named_by_file_and_line(tmp_path, monkeypatch):
    (tmp_path / "mine.py").write_text('from ..method import Method\n\nTEXT = "a"\n\n'
                                      'MINE = Method("clip", print, name="mine",\n'
                                      '              description=TEXT + str(1))\n')
    monkeypatch.setattr(decl, "PACKAGE", tmp_path)
    monkeypatch.setattr(decl, "_module_path", lambda module: tmp_path / (module.rsplit(".", 1)[1] + ".py"))
    decl.read_declarations.cache_clear(), decl._constants.cache_clear()
    try:
        with pytest.raises(decl.DeclarationError, match=r"mine.py:5: MINE's description= .*found Call"):
            decl.read_declarations()
        (tmp_path / "mine.py").write_text('TEXT = "a"\nOPT = Option("k", "my_k", default=3)\n'
                                          'MINE = Method("clip", print, name="mine", description=TEXT + "b", '
                                          'options=(OPT,))\n')
        decl._constants.cache_clear(), decl.read_declarations.cache_clear()
        option = Option("k", "my_k", default=3)
        assert decl.read_declarations() == (decl.Declaration("mine", "ab", (option,), "", "clip",
                                                             "litelvlm.methods.mine", "MINE"),)
    finally:
        decl._constants.cache_clear(), decl.read_declarations.cache_clear()


def test_reading_the_top_level_lines_gives_what_parsing_each_whole_file_gives(monkeypatch):
    cut = decl.read_declarations()
    monkeypatch.setattr(decl, "_parse", lambda path: ast.parse(path.read_text(), str(path)))
    decl._constants.cache_clear(), decl.read_declarations.cache_clear()
    try:
        assert decl.read_declarations() == cut and len(cut) == len(methods.TABLE) + len(methods.VARIANTS)
    finally:
        decl._constants.cache_clear(), decl.read_declarations.cache_clear()
