"""litelvlm.models.model_spec: the one reader of model strings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import RANDOM_CLIPS, ModelSpec
from litelvlm.registry.families import card

LIB = Path(__file__).resolve().parents[3] / "litelvlm"


@pytest.mark.parametrize("text, clip, glamm, seed", [
    ("tiny-random", "tiny", "tiny", 0), ("tiny-random:3", "tiny", "tiny", 3),
    ("tiny336-random:12", "tiny-336", None, 12), ("vit-l-14-336-random", "vit-l-14-336", None, 0),
    ("glamm-7b-random:1", None, "glamm-7b", 1),
])
def test_random_names(text, clip, glamm, seed):
    spec = ModelSpec.parse(text)
    assert (spec.random_clip, card("glamm").preset(spec), spec.random_seed(),
            spec.is_random) == (clip, glamm, seed, True)
    assert not spec.open_clip_style


def test_bad_seed_names_the_string():
    with pytest.raises(LiteLVLMError, match=r"model 'tiny-random:abc': the seed after ':' must be a whole "
                       r"number"):
        ModelSpec.parse("tiny-random:abc").random_seed()


@pytest.mark.parametrize("text, style, name", [
    ("ViT-L-14-336:openai", True, ("ViT-L-14-336", "openai")),
    ("ViT-B-32:/ckpt/model.pt", True, ("ViT-B-32", "/ckpt/model.pt")),
    ("ViT-B-32:", True, ("ViT-B-32", None)),
    ("local-dir:/m/clip", True, ("local-dir:/m/clip", None)),
    ("hf-hub:org/name", True, ("hf-hub:org/name", None)),
    ("openai/clip-vit-large-patch14-336", False, ("openai/clip-vit-large-patch14-336", None)),
    ("/models/clip", False, ("/models/clip", None)),
    ("./rel/dir:with-colon", False, ("./rel/dir", "with-colon")),
])
def test_open_clip_strings(text, style, name):
    spec = ModelSpec.parse(text)
    assert spec.open_clip_style is style and spec.open_clip_name == name and not spec.is_random


def test_folders_and_sizes():
    assert ModelSpec.parse("local-dir:/m/clip").folder == "/m/clip" == ModelSpec.parse("/m/clip").folder
    assert ModelSpec.parse("local-dir:/m/clip").local_dir == "/m/clip" and ModelSpec.parse(
        "/m/clip").local_dir is None
    assert ModelSpec.parse("random-glamm-7b").is_random  # the efficiency study's in-memory models
    for small in ("tiny-random:1", "/x/tiny336-random-hf-seed0", "toy-clip", "/w/my-toy"):
        assert ModelSpec.parse(small).is_small, small
    assert not ModelSpec.parse("openai/clip-vit-large-patch14-336").is_small
    # GLaMM's tiny-random pairs with tiny336
    assert set(card("glamm").presets) & set(RANDOM_CLIPS) == {"tiny-random"}


def test_no_other_module_splits_model_strings():
    """Reading a model string happens in litelvlm/models/model_spec.py alone (the registry's 'module:attr'
    aside)."""
    pattern = re.compile(r'(partition|split)\(":"|"-random"|startswith\("local-dir|\[len\("local-dir')
    found = [f"{p.relative_to(LIB)}:{i}" for p in LIB.rglob("*.py") if p.name != "model_spec.py"
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)
             and "module, attr" not in line]
    assert not found, found
