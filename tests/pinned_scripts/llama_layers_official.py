"""The LLaMA pieces the LLaVA-1.5 methods' LLM-side code takes from transformers 4.37.2 (SparseVLM
``modelling_sparse_llama.py`` L36-37 imports ``LlamaSdpaAttention``, ``apply_rotary_pos_emb``, ``repeat_kv``;
VScan's ``modeling_llama_x.py`` and DART's ``modeling_llama_self.py`` run 4.37's decoder layers), as the
pinned transformers computes them; run by ``tests/pinned_env.run_pinned``. Imports the pinned packages only.

For each case (a ``LlamaConfig``'s values, a ``LlamaModel`` state dict,
``inputs_embeds`` ``x`` in a dtype) it builds the pinned ``LlamaModel`` with SDPA (``LlamaSdpaAttention``, the
class SparseVLM's subclasses) and with eager attention, cast to ``x``'s dtype, and runs its decoder layers one
after the other at positions ``0..S-1`` with the mask 4.37's ``LlamaModel.forward`` builds (None for SDPA:
``is_causal``; the additive causal mask for eager): every layer's input and the final norm's output; and, on
each eager layer's input, the keys after RoPE and ``repeat_kv`` as 4.37's attention forward makes them
(``rotary_emb(value_states, seq_len=kv_seq_len)``, ``apply_rotary_pos_emb(q, k, cos, sin, position_ids)``:
DART's ``layer_outputs[-2]``).

usage: llama_layers_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import LlamaConfig, LlamaModel
from transformers.modeling_attn_mask_utils import (
    _prepare_4d_causal_attention_mask,
    _prepare_4d_causal_attention_mask_for_sdpa,
)
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def build(case, attn):
    model = LlamaModel(LlamaConfig(**case["config"], attn_implementation=attn)).eval()
    missing, unexpected = model.load_state_dict(case["state"], strict=False)
    if unexpected or missing:
        raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
    return model.to(case["x"].dtype)


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        x = case["x"]
        bsz, q_len, _ = x.shape
        pos = torch.arange(q_len).unsqueeze(0)   # LlamaModel.forward's, as VScan's and SparseVLM's loops pass
        got = {}
        with torch.no_grad():
            for attn in ("sdpa", "eager"):
                model = build(case, attn)
                if attn == "sdpa":
                    mask = _prepare_4d_causal_attention_mask_for_sdpa(None, (bsz, q_len), x, 0)
                else:
                    mask = _prepare_4d_causal_attention_mask(None, (bsz, q_len), x, 0)
                states = [x]
                for layer in model.layers:
                    states.append(layer(states[-1], attention_mask=mask, position_ids=pos)[0])
                got[attn] = {"states": states, "final": model.norm(states[-1]),
                             "class": type(model.layers[0].self_attn).__name__}
            keys = []
            for layer, h in zip(model.layers, got["eager"]["states"]):   # each layer's input
                a = layer.self_attn
                h = layer.input_layernorm(h)
                q = a.q_proj(h).view(bsz, q_len, a.num_heads, a.head_dim).transpose(1, 2)
                k = a.k_proj(h).view(bsz, q_len, a.num_key_value_heads, a.head_dim).transpose(1, 2)
                v = a.v_proj(h).view(bsz, q_len, a.num_key_value_heads, a.head_dim).transpose(1, 2)
                cos, sin = a.rotary_emb(v, seq_len=q_len)   # kv_seq_len, no cache
                _, k = apply_rotary_pos_emb(q, k, cos, sin, pos)
                keys.append(repeat_kv(k, a.num_key_value_groups))
        got["keys"] = keys
        results.append(got)
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
