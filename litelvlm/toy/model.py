"""The toy CLIP model: its architecture from the options, its initialisation, and its pooled features."""

from __future__ import annotations

import math

import torch
from transformers import AutoModel

from ..clip.random_init import ClipArch, hf_config
from .options import ToyTrainArgs


def arch_of(a: ToyTrainArgs):
    """The :class:`~litelvlm.clip.random_init.ClipArch` the arguments describe."""
    return ClipArch(image_size=a.image_size, patch_size=a.patch_size, vision_width=a.vision_width,
                    vision_layers=a.vision_layers,
                    vision_heads=a.vision_heads or max(1, a.vision_width // 32),
                    text_width=a.text_width, text_layers=a.text_layers, text_heads=max(1, a.text_width // 16),
                    embed_dim=a.embed_dim)


def sharpen_attention_init(model, factor: float, tower: str = "vision") -> None:
    """Multiply the query and key projections of one tower (``"vision"`` or ``"text"``) by
    ``factor`` (an initialisation choice: near-uniform attention at the start leaves the image
    embeddings almost identical, and makes a text embedding a sum over its words)."""
    if factor == 1.0:
        return
    with torch.no_grad():
        for layer in getattr(model, f"{tower}_model").encoder.layers:
            layer.self_attn.q_proj.weight.mul_(factor)
            layer.self_attn.k_proj.weight.mul_(factor)


def sincos_position_init(model) -> None:
    """Overwrite the vision tower's position embeddings with a 2-D sin-cos grid (half the channels
    encode the row, half the column; the CLS row is zero), as in MAE. The embeddings stay trainable."""
    emb = model.vision_model.embeddings
    weight = emb.position_embedding.weight
    grid = int(round(math.sqrt(weight.shape[0] - 1)))
    quarter = weight.shape[1] // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")

    def enc(v: torch.Tensor) -> torch.Tensor:
        angle = v.flatten()[:, None].float() * omega[None]
        return torch.cat([angle.sin(), angle.cos()], 1)

    table = torch.zeros_like(weight)
    table[1:, :4 * quarter] = torch.cat([enc(rows), enc(cols)], 1)
    with torch.no_grad():
        weight.copy_(table)


def build_model(a: ToyTrainArgs):
    """The ``CLIPModel`` a run starts from: seeded by ``a.seed``, with ``a.attention`` kernels and the
    initialisation the options ask for (sharpened queries and keys, sin-cos positions)."""
    torch.manual_seed(a.seed)
    model = AutoModel.from_config(hf_config(arch_of(a)), attn_implementation=a.attention)  # a CLIPModel
    sharpen_attention_init(model, a.attn_init)
    sharpen_attention_init(model, a.text_attn_init, "text")
    if a.pos_init == "sincos":
        sincos_position_init(model)
    return model


def pooled_features(out) -> torch.Tensor:
    """transformers >= 5 returns a model output whose ``pooler_output`` is projected; older a tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out
