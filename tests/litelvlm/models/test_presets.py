"""litelvlm.models.presets.named_preset: the one lookup behind every family's ``get_preset``."""

from __future__ import annotations

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.models.presets import named_preset


def test_a_name_a_preset_and_an_unknown_name():
    presets = {"b": 2.0, "a": 1.0}
    assert named_preset(presets, "a", float, "Toy") == 1.0
    assert named_preset(presets, 3.5, float, "Toy") == 3.5   # a preset itself passes through
    with pytest.raises(LiteLVLMError, match=r"^unknown Toy preset 'c'; known: a, b$"):
        named_preset(presets, "c", float, "Toy")
    with pytest.raises(LiteLVLMError, match=r"^unknown Toy architecture 'c'; known: a, b$"):
        named_preset(presets, "c", float, "Toy", noun="architecture")


def test_every_family_looks_its_presets_up_with_it():
    from litelvlm.glamm.config import get_arch
    from litelvlm.qwen.config import get_preset as qwen25
    from litelvlm.sa2va.config import get_preset as sa2va
    from litelvlm.sa2va.internvl.config import get_preset as internvl
    from litelvlm.sa2va.qwen3_config import get_preset as qwen3
    from litelvlm.unipixel.config import get_preset as unipixel
    from litelvlm.videoglamm.config import get_preset as videoglamm

    texts = {}
    for lookup in (get_arch, qwen25, qwen3, sa2va, internvl, unipixel, videoglamm):
        with pytest.raises(LiteLVLMError) as err:
            lookup("nope")
        texts[lookup.__module__] = str(err.value)
        assert lookup(lookup("tiny" if "internvl" not in lookup.__module__ else "internvl3-tiny")).name
    assert texts["litelvlm.glamm.config"] == ("unknown GLaMM architecture 'nope'; known: glamm-7b, scaled, "
                                              "tiny")
    assert texts["litelvlm.videoglamm.config"] == "unknown VideoGLaMM preset 'nope'; known: tiny, videoglamm"
    assert texts["litelvlm.sa2va.config"].startswith("unknown Sa2VA preset 'nope'; known: 3b, 7b, ")
    assert all(t.startswith("unknown ") and " 'nope'; known: " in t for t in texts.values())
