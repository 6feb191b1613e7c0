"""What the LLaVA-based methods read from their CLIP vision tower, as a pinned transformers computes it
(4.31.0 for LLaVA-PruMerge, 4.37.2 for the LLaVA-1.5 methods); run by ``tests/pinned_env.run_pinned``.
Imports the pinned packages only.

For each case (a ``CLIPVisionConfig``'s values, the state dict of a ``CLIPVisionModelWithProjection``, pixel
values in the tower's dtype) it builds the pinned ``CLIPVisionModelWithProjection`` (eager ``CLIPAttention``:
the only kernel of these versions), loads the tensors, casts it to the pixels' dtype and runs it as the
official towers do, ``output_hidden_states=True`` and ``output_attentions=True`` (VisPruner
``clip_encoder.py`` L36-52, HiPrune and VScan ``clip_encoder.py``, VisionZip ``clip_encoder.py`` L42-85).
Besides ``hidden_states`` and ``attentions`` it hands back what forward hooks see on the pinned modules:
block ``hook``'s ``q_proj`` and ``k_proj`` outputs (LLaVA-PruMerge ``clip_encoder.py`` L28-32, L93-107:
hooks on ``layers[23]``, the last block) and block -2's ``k_proj`` output in heads, averaged over the heads
(VisionZip ``utils.py`` L19-33, L61: the ``metric`` its patched ``CLIPAttention`` returns).

usage: clip_vision_official.py CASES.pt OUT.pt
"""

import sys

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from results import save  # tests/pinned_scripts/results.py (on the path: run_pinned)


def main(cases, out) -> None:
    results = []
    for case in torch.load(cases, weights_only=False):
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**case["config"])).eval()
        missing, unexpected = model.load_state_dict(case["state"], strict=False)
        if unexpected or any(not k.endswith("position_ids") for k in missing):
            raise RuntimeError(f"not the same module tree: missing {missing}, unexpected {unexpected}")
        model = model.to(case["pixels"].dtype)
        layers = model.vision_model.encoder.layers
        seen = {}

        def keep(name, seen=seen):
            def hook(module, args, output):
                seen[name] = output
            return hook

        handles = [layers[case["hook"]].self_attn.q_proj.register_forward_hook(keep("q")),
                   layers[case["hook"]].self_attn.k_proj.register_forward_hook(keep("k")),
                   layers[-2].self_attn.k_proj.register_forward_hook(keep("k_metric"))]
        with torch.no_grad():
            got = model.vision_model(pixel_values=case["pixels"], output_hidden_states=True,
                                     output_attentions=True)
        for h in handles:
            h.remove()
        attn = layers[-2].self_attn
        bsz = seen["k_metric"].shape[0]
        metric = seen["k_metric"].view(bsz, -1, attn.num_heads, attn.head_dim).transpose(1, 2).mean(1)
        results.append({"hidden_states": tuple(got.hidden_states), "attentions": tuple(got.attentions),
                        "q": seen["q"], "k": seen["k"], "metric": metric,
                        "attention_class": type(attn).__name__})
    save(out, results)


if __name__ == "__main__":
    main(*sys.argv[1:])
