"""The LLaMA decoder the LLaVA-1.5 methods' LLM-side transcriptions run on (SparseVLM, VScan's LLM stage,
DART: the model's own layers, transformers 5) against transformers 4.37.2's, the LLaVA-1.5 pin, run in a
second environment (``tests/litelvlm/methods/official_pin.py``,
``tests/pinned_scripts/llama_layers_official.py``).

What depends on the version there: SparseVLM subclasses 4.37's ``LlamaSdpaAttention`` and imports its
``apply_rotary_pos_emb`` and ``repeat_kv`` (``modelling_sparse_llama.py`` L36-37); VScan's ``forward_x`` and
DART's loop call 4.37's decoder layers; DART reads the keys after RoPE and ``repeat_kv``. On the tiny GLaMM
architecture, the same tensors and ``inputs_embeds``: every layer's output, under SDPA and eager attention,
and the keys equal 4.37.2's bit for bit in float32 and bfloat16 (a 611-token bfloat16 case: LLaVA-1.5's
length)."""

from __future__ import annotations

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from tests.litelvlm.methods.official_pin import LLM_CASES

IDS = [f"{n}-{str(dt).removeprefix('torch.')}" for n, dt in LLM_CASES]


@pytest.mark.parametrize("case", range(len(LLM_CASES)), ids=IDS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_the_decoder_layers_are_4_37s(pinned_437, case, attn):
    model, x, got = pinned_437.llm[case]
    assert got[attn]["class"] == {"sdpa": "LlamaSdpaAttention", "eager": "LlamaAttention"}[attn]
    model.config._attn_implementation = attn
    with torch.no_grad():
        out = model(inputs_embeds=x, output_hidden_states=True)
    states = got[attn]["states"]
    for i, (mine, theirs) in enumerate(zip(out.hidden_states[:-1], states[:-1], strict=True)):
        assert torch.equal(mine, theirs), (attn, i)
    assert torch.equal(out.last_hidden_state, got[attn]["final"])


@pytest.mark.parametrize("case", range(len(LLM_CASES)), ids=IDS)
def test_the_keys_after_rope_are_4_37s(pinned_437, case):
    """``repeat_kv(apply_rotary_pos_emb(k))`` of each layer, transformers 5's pieces on the same input, equal
    4.37.2's (``rotary_emb(value_states, seq_len)``, then the rows of ``position_ids``)."""
    model, x, got = pinned_437.llm[case]
    pos = torch.arange(x.shape[1])[None]
    with torch.no_grad():
        cos, sin = model.rotary_emb(x, pos)
        for i, (layer, h) in enumerate(zip(model.layers, got["eager"]["states"], strict=False)):
            a = layer.self_attn
            h = layer.input_layernorm(h)
            shape = (1, x.shape[1], -1, a.head_dim)
            q = a.q_proj(h).view(shape).transpose(1, 2)
            k = a.k_proj(h).view(shape).transpose(1, 2)
            _, k = apply_rotary_pos_emb(q, k, cos, sin)
            assert torch.equal(repeat_kv(k, a.num_key_value_groups), got["keys"][i]), i
