"""Convert OpenAI-architecture CLIP weights between the transformers and open_clip key layouts."""

from __future__ import annotations

import re

import torch

_BLOCK = {
    "ln_1": "layer_norm1", "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
}


def hf_to_open_clip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers ``CLIPModel`` state dict -> open_clip ``CLIP`` state dict (OpenAI architecture)."""
    out: dict[str, torch.Tensor] = {}
    v, t = "vision_model.", "text_model."
    out["visual.class_embedding"] = sd[v + "embeddings.class_embedding"]
    out["visual.positional_embedding"] = sd[v + "embeddings.position_embedding.weight"]
    out["visual.conv1.weight"] = sd[v + "embeddings.patch_embedding.weight"]
    for p in ("weight", "bias"):
        out[f"visual.ln_pre.{p}"] = sd[v + f"pre_layrnorm.{p}"]
        out[f"visual.ln_post.{p}"] = sd[v + f"post_layernorm.{p}"]
        out[f"ln_final.{p}"] = sd[t + f"final_layer_norm.{p}"]
    out["visual.proj"] = sd["visual_projection.weight"].T.contiguous()
    out["token_embedding.weight"] = sd[t + "embeddings.token_embedding.weight"]
    out["positional_embedding"] = sd[t + "embeddings.position_embedding.weight"]
    out["text_projection"] = sd["text_projection.weight"].T.contiguous()
    out["logit_scale"] = sd["logit_scale"]
    for src, dst in ((v + "encoder.layers.", "visual.transformer.resblocks."),
                     (t + "encoder.layers.", "transformer.resblocks.")):
        n = 1 + max(int(m.group(1)) for k in sd if (m := re.match(re.escape(src) + r"(\d+)\.", k)))
        for i in range(n):
            s, d = f"{src}{i}.", f"{dst}{i}."
            for p in ("weight", "bias"):
                out[d + f"attn.in_proj_{p}"] = torch.cat(
                    [sd[s + f"self_attn.{x}_proj.{p}"] for x in ("q", "k", "v")])
                for oc, hf in _BLOCK.items():
                    out[d + f"{oc}.{p}"] = sd[s + f"{hf}.{p}"]
    return out


def open_clip_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip ``CLIP`` state dict -> transformers ``CLIPModel`` state dict (OpenAI architecture)."""
    out: dict[str, torch.Tensor] = {}
    v, t = "vision_model.", "text_model."
    out[v + "embeddings.class_embedding"] = sd["visual.class_embedding"]
    out[v + "embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    out[v + "embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    for p in ("weight", "bias"):
        out[v + f"pre_layrnorm.{p}"] = sd[f"visual.ln_pre.{p}"]
        out[v + f"post_layernorm.{p}"] = sd[f"visual.ln_post.{p}"]
        out[t + f"final_layer_norm.{p}"] = sd[f"ln_final.{p}"]
    out["visual_projection.weight"] = sd["visual.proj"].T.contiguous()
    out[t + "embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out[t + "embeddings.position_embedding.weight"] = sd["positional_embedding"]
    out["text_projection.weight"] = sd["text_projection"].T.contiguous()
    out["logit_scale"] = sd["logit_scale"]
    for src, dst in (("visual.transformer.resblocks.", v + "encoder.layers."),
                     ("transformer.resblocks.", t + "encoder.layers.")):
        n = 1 + max(int(m.group(1)) for k in sd if (m := re.match(re.escape(src) + r"(\d+)\.", k)))
        for i in range(n):
            s, d = f"{src}{i}.", f"{dst}{i}."
            for p in ("weight", "bias"):
                q, k, vv = sd[s + f"attn.in_proj_{p}"].chunk(3)
                out[d + f"self_attn.q_proj.{p}"] = q
                out[d + f"self_attn.k_proj.{p}"] = k
                out[d + f"self_attn.v_proj.{p}"] = vv
                for oc, hf in _BLOCK.items():
                    out[d + f"{hf}.{p}"] = sd[s + f"{oc}.{p}"]
    return out
