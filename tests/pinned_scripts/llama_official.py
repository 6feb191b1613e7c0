"""GLaMM's LLM, LLaMA, as transformers 4.28.1 runs it (the release nearest GLaMM's pin, a development build
4.28.0.dev0 at huggingface/transformers@cae78c46 that no package registry holds); run by
``tests/pinned_env.run_pinned``. Imports the pinned packages only.

sejong-rcv/LiteLVLM @5896153 ``requirements.txt`` (``transformers@git+...@cae78c46``). For each case (a
config, a state dict, inputs_embeds in a dtype) it builds 4.28.1's ``LlamaForCausalLM`` (eager attention, its
only kernel), loads the tensors (every one; its per-layer rotary buffers it computes itself), casts to the
dtype and returns the decoder's ``last_hidden_state`` and the last ``hidden_states`` entry.

usage: llama_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        model = LlamaForCausalLM(LlamaConfig(**case["config"])).eval()
        # 4.28 keeps each layer's rotary ``inv_freq`` as a persistent buffer, computed from the config
        missing, unexpected = model.load_state_dict(case["state"], strict=False)
        if unexpected or any(not k.endswith("rotary_emb.inv_freq") for k in missing):
            raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
        model = model.to(case["x"].dtype)
        with torch.no_grad():
            got = model.model(inputs_embeds=case["x"], output_hidden_states=True)
        results.append({"last": got.last_hidden_state, "hidden_last": got.hidden_states[-1]})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
