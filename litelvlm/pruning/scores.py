"""Per-patch scores shared by several selectors: CLIP similarity and LiteLVLM's context score."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import mapped  # imports this module: MappedInputs read at call time
from .selection import SelectorInputs


def similarity(inputs: SelectorInputs, layer: int = -2, kind: str = "dot") -> torch.Tensor:
    """(T, N) similarity of each text's ``text_embeds`` with the projected patch tokens of ``layer``.

    ``kind="dot"`` is the raw dot product LiteLVLM uses; ``"cosine"`` normalises both sides. The
    arithmetic runs in the traces' dtype, as the official ``sim_aware_pruning`` does (bfloat16 there).
    """
    if isinstance(inputs, mapped.MappedInputs):
        return inputs.similarity(layer=layer, kind=kind)
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
    if isinstance(inputs, mapped.MappedInputs):
        return inputs.context(block=block)
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


#: How the CLIP-side selectors compute their [CLS] attention: ``official`` = the statements of the
#: official code (transformers' eager ``CLIPAttention`` / the methods' own hooks: the full attention
#: matrix in the trace's dtype); ``project`` = this project's earlier single-row computation.
ATTENTION_MODES = ("official", "project")


def check_attention_mode(mode: str) -> str:
    """Validate a selector's ``attention`` option."""
    if mode not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {', '.join(ATTENTION_MODES)}; got {mode!r}")
    return mode


def eager_attention(inputs: SelectorInputs, block: int) -> torch.Tensor:
    """(H, S, S) attention of ``block`` (every query, every key, prefix tokens included) as transformers 4.x's
    eager ``CLIPAttention`` computes it: ``q_proj(h) * scale`` split into heads, one ``bmm`` over all queries
    and keys, softmax in the trace's dtype (transformers 4.37 ``modeling_clip.py`` ``CLIPAttention.forward``;
    VisionZip's patched copy, ``visionzip/utils.py`` L22-61)."""
    vision = inputs.vision
    q, k, _ = vision.qkv(block)
    i = inputs.image_index
    q, k = q[i:i + 1], k[i:i + 1]
    s, w = q.shape[1], q.shape[2]
    heads = vision.backend.vision_heads
    d = w // heads
    qh = (q * d ** -0.5).view(1, s, heads, d).transpose(1, 2).contiguous().view(heads, s, d)
    kh = k.view(1, s, heads, d).transpose(1, 2).contiguous().view(heads, s, d)
    return torch.softmax(torch.bmm(qh, kh.transpose(1, 2)), dim=-1)


def eager_cls_attention(inputs: SelectorInputs, block: int) -> torch.Tensor:
    """(H, N) CLS->patch attention of ``block``: row 0 of :func:`eager_attention`. The full product is kept
    because a one-row product rounds differently, which reorders near-equal attentions at a top-k boundary."""
    return eager_attention(inputs, block)[:, 0, inputs.vision.num_prefix_tokens:]


def cls_attention_rows(inputs: SelectorInputs, block: int, mode: str = "official") -> torch.Tensor:
    """(H, N) CLS->patch attention of ``block``: :func:`eager_cls_attention` (``official``) or the
    trace's float32 one-row attention cast to its dtype (``project``, the earlier computation)."""
    if check_attention_mode(mode) == "official":
        vision = inputs.vision
        if vision.num_prefix_tokens < 1:
            vision.cls(0)  # raises the "no CLS token" error
        return eager_cls_attention(inputs, block)
    return inputs.vision.cls_attention(block)[inputs.image_index]
