"""What LiteLVLM and CDPruner read from CLIP's two towers, as a pinned transformers computes it (4.28.1 for
LiteLVLM's GLaMM, 4.37.2 for CDPruner's LLaVA-1.5); run by ``tests/pinned_env.run_pinned``. Imports the pinned
packages only.

Each case holds a ``CLIPModel``'s state dict, its vision and text configs' values and, optionally, pixel
values (the vision side) and ``input_ids`` / ``attention_mask`` (the text side), in the towers' dtype. The
vision side builds the pinned ``CLIPVisionModelWithProjection`` (eager ``CLIPAttention``, these versions'
only CLIP kernel) and runs it as LiteLVLM's ``CLIPVisionTower.forward`` does (sejong-rcv/LiteLVLM @5896153
``model/llava/model/multimodal_encoder/clip_encoder.py`` L61-113: forward hooks on the last block's
``q_proj`` / ``k_proj`` / ``v_proj``, ``output_hidden_states=True``, the layer ``select_layer`` patch tokens
through ``post_layernorm`` + ``visual_projection``). The text side builds the pinned
``CLIPTextModelWithProjection`` and returns its ``text_embeds`` (LiteLVLM L104-106; CDPruner
``clip_encoder.py``: the same call), the [EOS] pooling being the pinned version's own.

usage: clip_towers_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import (
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def _load(model, state, prefixes):
    own = {k: v for k, v in state.items() if k.startswith(prefixes)}
    missing, unexpected = model.load_state_dict(own, strict=False)
    if unexpected or any(not k.endswith("position_ids") for k in missing):
        raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")


def vision(case, dtype) -> dict:
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**case["vision_config"])).eval()
    _load(model, case["state"], ("vision_model.", "visual_projection."))
    model = model.to(dtype)
    seen = {}
    attn = model.vision_model.encoder.layers[-1].self_attn

    def keep(name):
        def hook(module, args, output):
            seen[name] = output
        return hook

    handles = [attn.q_proj.register_forward_hook(keep("q")), attn.k_proj.register_forward_hook(keep("k")),
               attn.v_proj.register_forward_hook(keep("v"))]
    try:
        with torch.no_grad():
            out = model(case["pixels"].to(dtype), output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    patches = out.hidden_states[case.get("select_layer", -2)][:, 1:]
    with torch.no_grad():
        proj = model.visual_projection(model.vision_model.post_layernorm(patches))
    return {"hidden_states": tuple(out.hidden_states), "q": seen["q"], "k": seen["k"], "v": seen["v"],
            "patch_embeds": proj, "attention_class": type(attn).__name__}


def text(case, dtype) -> dict:
    model = CLIPTextModelWithProjection(CLIPTextConfig(**case["text_config"])).eval()
    _load(model, case["state"], ("text_model.", "text_projection."))
    model = model.to(dtype)
    with torch.no_grad():
        out = model(input_ids=case["input_ids"], attention_mask=case.get("attention_mask"))
    return {"text_embeds": out.text_embeds, "last_hidden_state": out.last_hidden_state}


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        dtype = case["dtype"]
        got = {}
        if case.get("pixels") is not None:
            got.update(vision(case, dtype))
        if case.get("input_ids") is not None:
            got.update(text(case, dtype))
        results.append(got)
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
