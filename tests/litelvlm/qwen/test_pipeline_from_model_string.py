"""One ``from_model_string`` for the Qwen2.5-VL + SAM 2 families
(:class:`litelvlm.qwen.pipeline.QwenSam2Pipeline`): each family declares only how its parts load
(``load_parts``, ``modules_of``, ``part_options``)."""

from __future__ import annotations

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.qwen.pipeline import QwenSam2Pipeline
from litelvlm.registry.families import cards, get_family


def _defining(cls: type, name: str) -> type:
    return next(k for k in cls.__mro__ if name in vars(k))


def test_no_family_copies_another_s_loader():
    """Every family's ``from_model_string`` is its own loader or the one shared Qwen2.5-VL one: no two
    copies."""
    owners = {c.name: _defining(get_family(c.name), "from_model_string") for c in cards()}
    qwen = [name for name, owner in owners.items() if owner is QwenSam2Pipeline]
    # Sa2VA's own loader chooses its pipeline by backbone (Qwen2.5-VL, Qwen3-VL, InternVL3) first
    assert sorted(qwen) == ["unipixel"], owners
    assert len(set(owners.values())) == len(owners) - len(qwen) + 1, owners


@pytest.mark.parametrize("family, display", [("sa2va", "Sa2VA"), ("unipixel", "UniPixel")])
def test_the_shared_loader_refuses_as_each_family_did(family, display):
    cls = get_family(family)
    with pytest.raises(LiteLVLMError, match=f"the {family} family does not offer --quantize or --layer-dtype "
                       "yet"):
        cls.from_model_string(f"{family}-tiny-random", quantize="int8")
    with pytest.raises(LiteLVLMError, match=f"model '{family}-tiny-random:1': --sam does not apply: a "
                                            f"{display} folder brings its own"):
        cls.from_model_string(f"{family}-tiny-random:1", sam="some/sam")
