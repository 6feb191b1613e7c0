"""Sa2VA-InternVL3's LLM, Qwen2, as transformers 4.57.0 (Sa2VA's pin) runs it, read from a written folder;
run by ``tests/pinned_env.run_pinned``. Imports the pinned packages only.

bytedance/Sa2VA @9832e1a ``projects/sa2va/hf/models/modeling_sa2va_chat.py``: the LLM is
``Qwen2ForCausalLM(config.llm_config)`` (L132-133) under ``language_model``; ``predict_forward`` reads the
last entry of ``generate``'s ``hidden_states`` (L741, L750-752; its prompt step: one forward of
``inputs_embeds``). For each case (``inputs_embeds``, an attention implementation) it returns that entry and
the last decoder layer's output.

usage: qwen2_llm_official.py MODEL_DIR CASES.pt OUT.pt
"""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(folder, cases, out) -> None:
    folder = Path(folder)
    llm = json.loads((folder / "config.json").read_text())["llm_config"]
    tensors = {}
    for f in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    own = {k[len("language_model."):]: v for k, v in tensors.items() if k.startswith("language_model.")}
    results = []
    for case in torch.load(cases, weights_only=False):
        model = Qwen2ForCausalLM(Qwen2Config.from_dict(llm, attn_implementation=case["attn"])).eval()
        model.load_state_dict(own, strict=True)
        raw: list = []
        hook = model.model.layers[-1].register_forward_hook(
            lambda m, a, o, raw=raw: raw.append(o[0] if isinstance(o, tuple) else o))
        with torch.no_grad():
            got = model(inputs_embeds=case["x"], output_hidden_states=True)
        hook.remove()
        results.append({"hidden_last": got.hidden_states[-1], "before_norm": raw[-1],
                        "attn": model.config._attn_implementation})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
