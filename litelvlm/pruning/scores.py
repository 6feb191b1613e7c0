"""Per-patch scores shared by several selectors: CLIP similarity and LiteLVLM's context score."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import SelectorInputs


def similarity(inputs: SelectorInputs, layer: int = -2, kind: str = "dot") -> torch.Tensor:
    """(T, N) similarity of each text's ``text_embeds`` with the projected patch tokens of ``layer``.

    ``kind="dot"`` is the raw dot product LiteLVLM uses; ``"cosine"`` normalises both sides. The
    arithmetic runs in the traces' dtype, as the official ``sim_aware_pruning`` does (bfloat16 there).
    """
    if inputs.text is None:
        raise ValueError("similarity needs texts")
    img = inputs.vision.projected(layer)[inputs.image_index]
    txt = inputs.text.text_embeds.to(img.device, img.dtype)
    if kind == "cosine":
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    elif kind != "dot":
        raise ValueError(f"similarity kind must be 'dot' or 'cosine', got {kind!r}")
    return txt @ img.T


def context_scores(inputs: SelectorInputs, block: int = -1) -> torch.Tensor:
    """(N,) LiteLVLM's context score ``|| softmax(cos(q_cls, k_i) / sqrt(D)) * v_i ||``.

    q/k/v are the projections of encoder block ``block`` (default: the last), all heads
    concatenated; D is the hidden size. The arithmetic runs in the traces' dtype, as the official
    ``ctx_aware_pruning`` (``clip_encoder.py`` L78-96) does.
    """
    q, k, v = inputs.vision.qkv(block)
    p = inputs.vision.num_prefix_tokens
    i = inputs.image_index
    if p < 1:
        inputs.vision.cls(0)  # raises the "no CLS token" error
    q_cls = F.normalize(q[i, :1], dim=-1)
    k_img = F.normalize(k[i, p:], dim=-1)
    v_img = v[i, p:]
    d = q.shape[-1]
    attn = torch.softmax(q_cls @ k_img.T / d ** 0.5, dim=-1)  # (1, N)
    return (attn.T * v_img).norm(dim=-1)


def cls_attention_mean(inputs: SelectorInputs, block: int = -2) -> torch.Tensor:
    """(N,) CLS->patch attention of ``block`` averaged over heads (VisPruner, VisionZip)."""
    return inputs.vision.cls_attention(block)[inputs.image_index].float().mean(0)
