"""LiteLVLM in the GLaMM loop, CDPruner's text tower and FlowCut's patched forwards, against their official
sides under the official pins (``tests/litelvlm/methods/official_pin.py``).

* LiteLVLM (sejong-rcv/LiteLVLM @5896153, transformers 4.28.0.dev0; its nearest release 4.28.1, the
  ``glamm`` pin): what its ``CLIPVisionTower.forward`` reads from CLIP (``clip_encoder.py`` L61-113: the
  hooked q/k/v of the last block, the layer -2 patch tokens through ``post_layernorm`` +
  ``visual_projection``, the text tower's ``text_embeds`` with 4.28's [EOS] pooling) computed by 4.28.1's own
  ``CLIPVisionModelWithProjection`` / ``CLIPTextModelWithProjection`` on the tiny GLaMM's random CLIP, equals
  what the project's trace holds, and the official selection (``tests/official_litelvlm.py``) on the pinned
  tensors keeps the tokens the project keeps.
* CDPruner (Theia-4869/CDPruner @9541616, 4.37.2): the text embeds its rule reads, computed by 4.37.2's
  ``CLIPTextModelWithProjection``, equal the project's.
* FlowCut (TungChintao/FlowCut @a2ecd24, its README installs LLaVA's 4.37.2): the official
  ``modeling_clip_flowcut.py`` forwards, applied to 4.37.2's CLIP classes as ``flowcut/main.py`` applies
  them (``tests/pinned_scripts/flowcut_official.py``), keep the patches and return the features the
  project's FlowCut does (``test_flowcut_official.py``'s towers; every budget: slow).

The texts are tokenized in this environment (the official call's arguments); the towers run under the pins.
"""

from __future__ import annotations

import pytest
import torch

from litelvlm.methods import get_method
from litelvlm.methods.select import select
from litelvlm.pruning.tower import ClipTower
from tests.litelvlm.methods.official_pin import FLOWCUT_TOWERS, clip_cases, flowcut_437_sweep
from tests.official_litelvlm import official_context, official_retain, official_similarities

DTYPES = (torch.float32, torch.bfloat16)


def test_the_official_sides_ran_under_the_pins(pinned_428, pinned_437, official):
    assert pinned_428.versions["transformers"] == "4.28.1"
    assert pinned_437.versions["transformers"] == "4.37.2"
    for got in (pinned_428, pinned_437):
        assert "pinned" in got.versions["transformers_path"]
    assert all(r["attention_class"] == "CLIPAttention" for r in pinned_428.clip.values())
    assert len(pinned_437.flowcut) == len(FLOWCUT_TOWERS)   # ../shared is here (the ``official`` fixture)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_what_litelvlm_reads_from_clip_is_4_28s(pinned_428, dtype):
    """``hidden_states``, the last block's hooked q/k/v, the projected layer -2 patches and the questions'
    ``text_embeds``: 4.28.1's bit for bit, float32 and bfloat16 (the tiny CLIP: head size 16)."""
    _, prep, _, text = clip_cases()[dtype]
    got = pinned_428.clip[dtype]
    assert torch.equal(text["input_ids"], prep.text.input_ids)   # the official call's tokens are the trace's
    hs = prep.vision.hidden_states
    assert len(hs) == len(got["hidden_states"])
    assert all(torch.equal(a, b) for a, b in zip(hs, got["hidden_states"], strict=True))
    for ours, theirs in zip(prep.vision.qkv(-1), (got["q"], got["k"], got["v"]), strict=True):
        assert torch.equal(ours, theirs)
    assert torch.equal(prep.vision.projected(-2), got["patch_embeds"])
    assert torch.equal(prep.text.text_embeds, got["text_embeds"])


@pytest.mark.parametrize("budgets", [(1, 2, 3, 7, 64, 128, 191, 192, 193, 288, 574, 575, 576),
                                     pytest.param(range(1, 577), marks=pytest.mark.slow)],
                         ids=["edges", "all"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_litelvlm_keeps_the_official_tokens_under_4_28(pinned_428, dtype, budgets):
    """The official selection on what 4.28.1's towers returned keeps the tokens, in the order, that the
    project's LiteLVLM keeps (the default suite: the edges and the paper's budgets; every K: slow)."""
    _, prep, _, _ = clip_cases()[dtype]
    got = pinned_428.clip[dtype]
    context = official_context(got["q"], got["k"], got["v"])
    similarities = official_similarities(got["patch_embeds"], got["text_embeds"])
    assert prep.vision.num_patches == 576 and len(prep.text.texts) == 2
    for budget in budgets:
        ours = select("litelvlm", prep.selector_inputs(), budget).indices
        assert ours.tolist() == official_retain(context, similarities, budget).tolist(), budget


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cdpruner_text_embeds_are_4_37s(pinned_437, dtype):
    """The text embeds CDPruner's rule reads (``prep.text.text_embeds``): 4.37.2's
    ``CLIPTextModelWithProjection`` on the same ids and mask, bit for bit, float32 and bfloat16."""
    _, prep, _, text = clip_cases()[dtype]
    assert torch.equal(text["input_ids"], prep.text.input_ids)
    assert torch.equal(prep.text.text_embeds, pinned_437.text[dtype]["text_embeds"])


def check_flowcut(cases) -> int:
    """The project's FlowCut (``ClipTower`` on the transformers 5 tower's modules) against the official
    forwards' results under 4.37.2: the same kept patches in the same order and the same feature-layer
    tokens, bit for bit. Returns how many budgets were compared."""
    flowcut, compared = get_method("flowcut"), 0
    for vm, _, hidden0, budgets, results in cases:
        n = hidden0.shape[1] - 1
        for k, got in zip(budgets, results, strict=True):
            ours = flowcut.select(ClipTower(list(vm.encoder.layers), hidden0, feature_layer=-2), k)
            if k == n:   # nothing pruned: the official list is the unpruned sequence's, [CLS] counted
                assert torch.equal(got["keep"][0], torch.arange(n + 1))
                assert torch.equal(ours.indices, torch.arange(n))
            else:
                assert torch.equal(ours.indices, got["keep"][0]), k
            assert got["features"].shape == (1, k, vm.config.hidden_size), k
            assert torch.equal(ours.features, got["features"][0]), k
            compared += 1
    return compared


def test_flowcut_is_the_official_code_under_4_37(pinned_437, official):
    """The 3-, 5- and 6-block towers on a 5x5 grid at the edges (``FLOWCUT_BUDGETS``), float32."""
    assert check_flowcut(pinned_437.flowcut) == 8 * len(FLOWCUT_TOWERS)


@pytest.mark.slow
def test_flowcut_every_budget_under_4_37(official):
    """Every K = 1..25 on the 5x5 towers and every K = 1..576 on ViT-L/14-336's depth and grid."""
    assert check_flowcut(flowcut_437_sweep()) == 25 * len(FLOWCUT_TOWERS) + 576
