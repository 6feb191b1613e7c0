"""VideoGLaMM's LLM, Phi-3, as transformers 4.41.0 (VideoGLaMM's pin) runs it; run by
``tests/pinned_env.run_pinned``. Imports the pinned packages only.

mbzuai-oryx/VideoGLaMM @6b15b1e README (``pip install transformers==4.41.0``); the model's config carries
``sliding_window`` as the official checkpoint does (4.41 reads it as the number of keys before the query that
stay visible). For each case (a config, a state dict, inputs_embeds, an attention implementation) it builds
4.41's ``Phi3ForCausalLM``, loads the tensors strictly and returns the decoder's ``last_hidden_state`` and the
last ``hidden_states`` entry.

usage: phi3_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import Phi3Config, Phi3ForCausalLM

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        config = Phi3Config(**case["config"], attn_implementation=case["attn"])
        model = Phi3ForCausalLM(config).eval()
        model.load_state_dict(case["state"], strict=True)
        with torch.no_grad():
            got = model.model(inputs_embeds=case["x"], output_hidden_states=True)
        results.append({"last": got.last_hidden_state, "hidden_last": got.hidden_states[-1],
                        "attn": model.config._attn_implementation})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
