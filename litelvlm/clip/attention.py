"""CLIP's eager attention as transformers 4.x computes it (the official stacks' CLIP), registered through
transformers' ``AttentionInterface``.

transformers 4.28 to 4.41 (GLaMM / LiteLVLM, the LLaVA-based methods, VideoGLaMM) have one CLIP kernel, the
eager ``CLIPAttention.forward``: the queries scaled by d^-0.5 before the product, one ``bmm`` over batch x
heads, the masks added, the softmax in the tower's dtype, dropout, the product with the values. transformers
5's eager kernel multiplies the product by the scale and softmaxes in float32, casting back: the same in
float32 where the scale is a power of two (CLIP ViT-L's head size 64, the tiny presets' 16), not in bfloat16
or float16 (docs/fidelity.md). :func:`register` adds :data:`NAME` (:func:`clip_attention`, with transformers'
``eager_mask`` as its mask) to transformers' interfaces; :func:`litelvlm.lvlm.numerics.set_attention` selects
it for CLIP's towers under ``--attn eager`` with ``clip_softmax="official"``. :func:`scaled_attention` holds
the statements, shared with the tower stage (:func:`litelvlm.pruning.tower.eager_clip_block`).
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask
from transformers.models.clip.modeling_clip import CLIPPreTrainedModel

#: the attention implementation's name in transformers' interfaces (``config._attn_implementation``)
NAME = "litelvlm_clip_eager"


def scaled_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None = None, dropout: float = 0.0,
                     training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """4.x's eager ``CLIPAttention`` from the scaled queries (B, H, T, d) on: (output (B, H, T, d),
    probabilities (B, H, T, S) in the input dtype, before dropout)."""
    b, h, t, d = query.shape
    s = key.shape[-2]
    weights = torch.bmm(query.reshape(b * h, t, d), key.reshape(b * h, s, d).transpose(1, 2))
    if attention_mask is not None:   # (B, 1, T, S): the causal and padding masks in one
        weights = (weights.view(b, h, t, s) + attention_mask).view(b * h, t, s)
    weights = nn.functional.softmax(weights, dim=-1)
    probs = nn.functional.dropout(weights, p=dropout, training=training)
    out = torch.bmm(probs, value.reshape(b * h, s, d))
    return out.view(b, h, t, d), weights.view(b, h, t, s)


def clip_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                   **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``AttentionInterface`` function of :data:`NAME`: :func:`scaled_attention` of ``query * scaling``,
    the output as transformers' eager kernel returns it (B, T, H, d)."""
    out, weights = scaled_attention(query * scaling, key, value, attention_mask, dropout, module.training)
    return out.transpose(1, 2).contiguous(), weights


@functools.cache
def register() -> str:
    """Register :data:`NAME` (once per process) in transformers' attention and mask interfaces; returns it."""
    AttentionInterface.register(NAME, clip_attention)
    AttentionMaskInterface.register(NAME, eager_mask)   # the text tower's causal and padding mask, eager's
    return NAME


def clip_models(model: nn.Module | None) -> list[nn.Module]:
    """The transformers CLIP models in ``model`` (itself included): ``CLIPModel``, ``CLIPVisionModel``, ..."""
    return [] if model is None else [m for m in model.modules() if isinstance(m, CLIPPreTrainedModel)]


__all__ = ["NAME", "clip_attention", "clip_models", "register", "scaled_attention"]
