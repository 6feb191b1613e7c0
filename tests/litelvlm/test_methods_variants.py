"""A method's variant for another backbone (``litelvlm.methods.VARIANTS``): found by ``get_method(name,
backbone)`` and by a family's ``spec``, the method itself everywhere else."""

from __future__ import annotations

import pytest

from litelvlm import methods
from litelvlm.errors import LiteLVLMError
from litelvlm.lazy import Lazy
from litelvlm.lvlm.abilities import Abilities
from litelvlm.lvlm.family import GroundingPipeline


class _Family(GroundingPipeline):
    abilities = Abilities(backbone="test-backbone")


def test_variant_is_found_for_its_backbone_only(monkeypatch):
    monkeypatch.setitem(methods.VARIANTS, ("random", "test-backbone"),
                        methods.Entry(Lazy("litelvlm.methods.fastv", "FASTV"), "random's test variant"))
    monkeypatch.setattr(methods, "_LOADED", {})
    own = methods.get_method("random")
    variant = methods.get_method("random", "test-backbone")
    assert own.stage.name == "clip" and own.backbone == "" and own.name == "random"
    assert variant.stage.name == "llm-layer" and variant.backbone == "test-backbone"
    assert variant.name == "random" and variant.description == "random's test variant"
    assert methods.get_method("random", "another-backbone") is own
    assert methods.get_method("fastv", "test-backbone").backbone == ""  # no variant: the method itself
    assert _Family.spec(_Family, "random") is variant  # asked of the class, as the studies ask
    assert methods.variant_names("test-backbone") == ["random"]


def test_unknown_name_is_refused_with_any_backbone():
    with pytest.raises(LiteLVLMError, match="unknown method 'randm'.*did you mean 'random'"):
        methods.get_method("randm", "qwen2.5-vl")


def test_every_variant_names_a_registered_method_and_a_module_method():
    for (name, backbone), entry in methods.VARIANTS.items():
        assert name in methods.TABLE and backbone and entry.description
        assert methods.get_method(name, backbone).backbone == backbone
