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
from tests.pinned_env import run_pinned

#: (official sliding_window, sequence length)
CASES = [(3, 15), (7, 31), (2047, 2100)]
#: the Phi3Config fields both versions take, as the official checkpoint's config holds them
FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "hidden_act", "rms_norm_eps", "max_position_embeddings",
          "original_max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
          "tie_word_embeddings", "attention_dropout", "embd_pdrop", "resid_pdrop")


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    """(ours, the official side's results) for :data:`CASES`."""
    tmp, cases, ours = tmp_path_factory.mktemp("phi3"), [], []
    for k, (window, length) in enumerate(CASES):
        p = replace(get_preset("tiny"), sliding_window=window)
        torch.manual_seed(k)
        model = Phi3ForCausalLM(phi3_config(p)).eval()
        x = torch.randn(1, length, p.llm_hidden, generator=torch.Generator().manual_seed(k))
        with torch.no_grad():
            ours.append(model.model(inputs_embeds=x).last_hidden_state)
        cfg = model.config
        official = {f: getattr(cfg, f) for f in FIELDS} | {"rope_theta": 10000.0, "sliding_window": window}
        cases.append({"config": official, "state": model.state_dict(), "x": x, "attn": "eager"})
    torch.save(cases, tmp / "cases.pt")
    run_pinned("videoglamm", "phi3_official.py", str(tmp / "cases.pt"), str(tmp / "out.pt"))
    return ours, torch.load(tmp / "out.pt", weights_only=False)


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
