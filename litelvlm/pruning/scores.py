"""Per-token scores shared by several selectors: the similarity and LiteLVLM's context score of the tokens a
selector chooses among (CLIP's patches or a family's tokens), and CLIP's [CLS] attention."""

from __future__ import annotations

import torch

from .mapped import MappedInputs
from .patch_scores import patch_context, patch_similarity
from .selection import SelectorInputs


def similarity(inputs: SelectorInputs | MappedInputs, layer: int = -2, kind: str = "dot") -> torch.Tensor:
    """(T, N) each text's similarity with the N tokens a selector chooses among: CLIP's patches
    (:func:`~litelvlm.pruning.patch_scores.patch_similarity`) or a family's tokens
    (:meth:`MappedInputs.similarity`)."""
    if isinstance(inputs, MappedInputs):
        return inputs.similarity(layer=layer, kind=kind)
    return patch_similarity(inputs, layer=layer, kind=kind)


def context_scores(inputs: SelectorInputs | MappedInputs, block: int = -1) -> torch.Tensor:
    """(N,) LiteLVLM's context score of the N tokens a selector chooses among: CLIP's patches
    (:func:`~litelvlm.pruning.patch_scores.patch_context`) or a family's tokens
    (:meth:`MappedInputs.context`)."""
    if isinstance(inputs, MappedInputs):
        return inputs.context(block=block)
    return patch_context(inputs, block=block)


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
