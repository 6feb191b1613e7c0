"""VideoGLaMM's Phi-3 (``litelvlm.videoglamm.hf_config.phi3_config``: transformers 5, ``sliding_window + 1``)
against transformers 4.41.0's own ``Phi3ForCausalLM`` run under VideoGLaMM's pin in a second environment
(``tests/pinned_env.py``; mbzuai-oryx/VideoGLaMM @6b15b1e README L76), with the official ``sliding_window``
read literally there: the same tensors and inputs give the same decoder states, at windows shorter than the
sequence (3, 7) and at the released window 2047 over a sequence longer than it (2100 tokens, as a video
prompt is). 4.41's last ``hidden_states`` entry is its normed ``last_hidden_state``, as in transformers 5."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import Phi3ForCausalLM

from litelvlm.videoglamm.config import get_preset
from litelvlm.videoglamm.hf_config import phi3_config
from tests.litelvlm.videoglamm.official_pin import PHI3_CASES as CASES
from tests.litelvlm.videoglamm.official_pin import official_side


@pytest.fixture(scope="module")
def pinned():
    """(ours, the official side's results) for :data:`CASES` (``official_pin.PHI3_CASES``): the official side
    run once a process with the CLIP frames' (``tests/litelvlm/videoglamm/official_pin.py``)."""
    models, cases, got = official_side().phi3
    ours = []
    for model, case in zip(models, cases, strict=True):
        with torch.no_grad():
            ours.append(model.model(inputs_embeds=case["x"]).last_hidden_state)
    return ours, got


def test_the_official_side_ran_under_the_pin(pinned):
    got = pinned[1]
    assert got["versions"]["transformers"] == "4.41.0" and "pinned" in got["versions"]["transformers_path"]
    assert all(c["attn"] == "eager" for c in got["cases"])


def test_the_decoder_states_are_4_41s(pinned):
    ours, got = pinned
    for (window, _), mine, official in zip(CASES, ours, got["cases"], strict=True):
        assert torch.equal(official["hidden_last"], official["last"])   # the normed state last
        torch.testing.assert_close(mine, official["last"], atol=1e-5, rtol=1e-5, msg=f"window {window}")


def test_transformers_5_reading_the_window_literally_would_differ(pinned):
    """The ``+ 1`` is what makes them equal: transformers 5 with the official value sees one key fewer."""
    window, length = CASES[0]
    p = replace(get_preset("tiny"), sliding_window=window)
    torch.manual_seed(0)
    model = Phi3ForCausalLM(phi3_config(p)).eval()
    model.config.sliding_window = window
    literal = Phi3ForCausalLM(model.config).eval()
    literal.load_state_dict(model.state_dict())
    x = torch.randn(1, length, p.llm_hidden, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = literal.model(inputs_embeds=x).last_hidden_state
    assert (got - pinned[1]["cases"][0]["last"]).abs().max() > 1e-3
