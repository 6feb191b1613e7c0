"""A LLaMA decoder as transformers 4.51.3 runs it (the release FireRedTeam/IVC-Prune @03afd9c's bundled
``transformers/`` modifies; its ``modeling_llama.py`` keeps the release's ``LlamaRotaryEmbedding``, attention
and decoder layers and adds ``compute_attention_weights`` and ``IVCP_forward_flashattention``); run by
``tests/pinned_env.run_pinned``. Imports the pinned packages only.

For each case (a config, a state dict, inputs_embeds in a dtype) it builds 4.51.3's ``LlamaForCausalLM``
(eager attention), loads the tensors, casts to the dtype with the rotary frequencies kept in float32 (as the
project's bfloat16 pipeline holds them) and returns what IVC-Prune's rule reads: the rotary tables
(``LlamaRotaryEmbedding.forward``, whose head-dimension means pick the IVC tokens), every ``hidden_states``
entry (the input of each layer, whose value states layer ``K-1`` compares) and the final normed state.

usage: llama_ivc_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        config = LlamaConfig(**case["config"])
        config._attn_implementation = "eager"
        model = LlamaForCausalLM(config).eval()
        missing, unexpected = model.load_state_dict(case["state"], strict=False)
        if unexpected or missing:
            raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
        rotary = model.model.rotary_emb
        kept = {n: b.clone() for n, b in rotary.named_buffers()}
        model = model.to(case["x"].dtype)
        for n, b in kept.items():
            setattr(rotary, n, b)
        x = case["x"]
        position_ids = torch.arange(x.shape[1])[None]
        with torch.no_grad():
            cos, sin = rotary(x, position_ids)
            got = model.model(inputs_embeds=x, output_hidden_states=True)
        results.append({"cos": cos, "sin": sin, "hidden_states": got.hidden_states,
                        "last": got.last_hidden_state})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
