"""LiteLVLM's two per-patch scores on CLIP's own patches: the patch-text similarity and the context score.

:mod:`litelvlm.pruning.scores` gives them to the selectors for either kind of input (CLIP's patches, or a
family's tokens through :class:`litelvlm.pruning.mapped.MappedInputs`, which maps these onto its tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .selection import SelectorInputs


def patch_similarity(inputs: SelectorInputs, layer: int = -2, kind: str = "dot") -> torch.Tensor:
    """(T, P) similarity of each text's ``text_embeds`` with the projected patch tokens of ``layer``.

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


def patch_context(inputs: SelectorInputs, block: int = -1) -> torch.Tensor:
    """(P,) LiteLVLM's context score ``|| softmax(cos(q_cls, k_i) / sqrt(D)) * v_i ||``.

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
    attn = torch.softmax(q_cls @ k_img.T / d ** 0.5, dim=-1)  # (1, P)
    return (attn.T * v_img).norm(dim=-1)
