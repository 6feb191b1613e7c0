"""GLaMM's LLaMA (``litelvlm.glamm.config.llama_config``, transformers 5, eager attention) against
transformers 4.28.1's own ``LlamaForCausalLM`` run in a second environment (``tests/pinned_env.py``): the
release nearest GLaMM's pin (sejong-rcv/LiteLVLM @5896153 ``requirements.txt``: a 4.28.0.dev0 build from git,
which no package registry holds). Same tensors, same inputs: the decoder states equal bit for bit in float32
and in bfloat16 (the dtype of GLaMM's released weights), on the tiny and the 8-head ``scaled`` architecture at
odd lengths, with the rotary frequencies in float32 as the bfloat16 pipeline holds them (tested; a model cast
whole to bfloat16 rounds them and differs from 4.28.1 by a bfloat16 step in a third of the states);
4.28.1's last ``hidden_states`` entry is its normed ``last_hidden_state``, as in transformers 5."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from litelvlm.glamm.config import get_arch, llama_config, with_vocab
from tests.pinned_env import run_pinned

#: (architecture, sequence length, dtype)
CASES = [("tiny", 37, torch.float32), ("tiny", 37, torch.bfloat16), ("scaled", 131, torch.float32),
         ("scaled", 131, torch.bfloat16)]
#: the LlamaConfig fields 4.28 takes (no num_key_value_heads, no rope_theta: its rotary base is 10,000)
FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "hidden_act", "max_position_embeddings", "rms_norm_eps", "bos_token_id", "eos_token_id",
          "pad_token_id", "tie_word_embeddings")


@pytest.fixture(scope="module")
def pinned(tmp_path_factory):
    """(ours, the official side's results) for :data:`CASES`."""
    tmp, cases, ours = tmp_path_factory.mktemp("llama"), [], []
    for k, (name, length, dtype) in enumerate(CASES):
        arch = get_arch(name)
        arch = with_vocab(arch, arch.vocab_size or 512)
        assert arch.rope_theta == 10000 and arch.llm_kv_heads == arch.llm_heads   # what 4.28 can hold
        torch.manual_seed(k)
        model = LlamaForCausalLM(llama_config(arch)).eval()
        model.config._attn_implementation = "eager"
        state = model.state_dict()
        rotary = model.model.rotary_emb
        kept = {n: b.clone() for n, b in rotary.named_buffers()}
        model = model.to(dtype)
        for n, b in kept.items():   # the pipeline keeps the rotary frequencies in float32 (as 4.28 its cache)
            setattr(rotary, n, b)
        x = torch.randn(1, length, arch.llm_hidden, generator=torch.Generator().manual_seed(k)).to(dtype)
        with torch.no_grad():
            ours.append(model.model(inputs_embeds=x).last_hidden_state)
        cases.append({"config": {f: getattr(model.config, f) for f in FIELDS}, "state": state, "x": x})
    torch.save(cases, tmp / "cases.pt")
    run_pinned("glamm", "llama_official.py", str(tmp / "cases.pt"), str(tmp / "out.pt"))
    return ours, torch.load(tmp / "out.pt", weights_only=False)


def test_the_official_side_ran_under_the_nearest_release_of_the_pin(pinned):
    got = pinned[1]
    assert got["versions"]["transformers"] == "4.28.1" and "pinned" in got["versions"]["transformers_path"]


def test_the_decoder_states_are_4_28s(pinned):
    ours, got = pinned
    for (name, _, dtype), mine, official in zip(CASES, ours, got["cases"], strict=True):
        assert torch.equal(official["hidden_last"], official["last"])   # the normed state last
        assert official["last"].dtype == mine.dtype == dtype
        assert torch.equal(mine, official["last"]), (name, dtype)


def test_the_bfloat16_pipeline_keeps_its_rotary_frequencies_in_float32(tiny_glamm_bf16):
    buffers = dict(tiny_glamm_bf16.model.named_buffers())
    freqs = [b for n, b in buffers.items() if n.endswith("inv_freq")]
    assert tiny_glamm_bf16.dtype == torch.bfloat16 and freqs and all(b.dtype == torch.float32 for b in freqs)
