"""VideoGLaMM's CLIP tower (``litelvlm.videoglamm.hf_config.clip_config``: transformers 5's
``CLIPVisionModel``, the tiny preset) under the official numerics against transformers 4.41.0's own tower, run
under VideoGLaMM's pin (``tests/pinned_env.py``; mbzuai-oryx/VideoGLaMM @6b15b1e README L76;
``tests/pinned_scripts/clip_vision_official.py``). 4.41's only CLIP kernel is the eager ``CLIPAttention``
(queries scaled before the product, softmax in the tower's dtype), which the project runs as
``litelvlm.clip.attention``: every hidden state is 4.41's bit for bit, in float32 and bfloat16 (577 tokens,
head size 16)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.clip.attention import NAME
from litelvlm.lvlm.numerics import Numerics, set_attention
from tests.litelvlm.videoglamm.official_pin import TOWER_DTYPES, official_side


@pytest.fixture(scope="module")
def pinned():
    """(our towers, the official results), the official side run once a process
    (``tests/litelvlm/videoglamm/official_pin.py``)."""
    models, _, got = official_side().towers
    return models, got


def test_the_official_tower_ran_under_the_pin(pinned):
    got = pinned[1]
    assert got["versions"]["transformers"] == "4.41.0" and "pinned" in got["versions"]["transformers_path"]
    assert all(c["attention_class"] == "CLIPAttention" for c in got["cases"])


@pytest.mark.parametrize("k", range(len(TOWER_DTYPES)), ids=[str(d) for d in TOWER_DTYPES])
def test_the_hidden_states_are_4_41s(pinned, k):
    """As the VideoGLaMM pipeline sets and runs its tower (``set_attention`` of the official numerics,
    ``VideoGLaMMModel.clip_hidden_states``)."""
    models, got = pinned
    model, official = models[k], got["cases"][k]
    numerics = Numerics.official()
    set_attention(numerics.attn, model, clip_softmax=numerics.clip_softmax)
    assert model.config._attn_implementation == NAME
    pixels = official_side().towers[1][k]["pixels"]
    with torch.no_grad():
        ours = model(pixels, output_hidden_states=True).hidden_states
    assert len(ours) == len(official["hidden_states"])
    for i, (a, b) in enumerate(zip(ours, official["hidden_states"], strict=True)):
        assert torch.equal(a, b), i
