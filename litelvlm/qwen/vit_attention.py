"""Attention each merged token receives in one block of Qwen2.5-VL's vision tower: VScan's Qwen score.

VScan's Qwen code (Tencent/SelfEvolvingAgent @a82450e, ``VScan/qwen/model/qwen2_5_vl_custom.py`` L342-392 and the
attention weights of ``Qwen2_5_VLVisionSdpaAttention_X``, L466-509, the class its RefCOCO script
``VScan/qwen/eval/test_refcoco.py`` binds; the flash-attention variant, L416-463, rotates q and k a second time
before its weights) computes, in one block of the tower (its "global" score: the last block, a
full-attention one), the softmax attention of every patch over every patch after the vision RoPE (a window
block's attention is masked to its windows), sums it over heads, averages it over the query patches, averages the 4
patches of each merged token and puts the tokens back in the LLM's order (``argsort(window_index)``). UniPixel's
LiteLVLM can take its context part from this score (this project's adaptation: the tower has no [CLS] whose query
LiteLVLM's own context score reads).

The block's inputs are captured by a forward pre-hook on its attention module (removed in ``finally``) during one
ordinary forward of the tower; the attention is recomputed from them, as :mod:`litelvlm.clip.traces` does for CLIP.
"""

from __future__ import annotations

import math

import torch

from .grid import TokenGrid, window_index


def _capture_block_inputs(visual, pixel_values: torch.Tensor, grid_thw: torch.Tensor, block: int) -> dict:
    """The normed input, ``cu_seqlens`` and ``position_embeddings`` of block ``block``'s attention, from one forward."""
    seen: dict = {}

    def keep(module, args, kwargs) -> None:
        seen.update(x=args[0] if args else kwargs["hidden_states"], cu_seqlens=kwargs["cu_seqlens"],
                    position_embeddings=kwargs["position_embeddings"])

    handle = visual.blocks[block].attn.register_forward_pre_hook(keep, with_kwargs=True)
    try:
        visual(pixel_values, grid_thw=grid_thw)
    finally:
        handle.remove()
    return seen


@torch.no_grad()
def received_attention(visual, pixel_values: torch.Tensor, grid_thw: torch.Tensor, block: int = -1) -> torch.Tensor:
    """(M,) VScan's score of each merged token of one image or frame group (LLM order), from block ``block`` of
    ``visual`` (``Qwen2_5_VisionTransformerPretrainedModel``; default: the last block, VScan's global score)."""
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import apply_rotary_pos_emb_vision

    block = block % len(visual.blocks)
    seen = _capture_block_inputs(visual, pixel_values, grid_thw, block)
    attn = visual.blocks[block].attn
    x = seen["x"]
    s = x.shape[0]
    q, k, _ = attn.qkv(x).reshape(s, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = seen["position_embeddings"]
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q, k = q.transpose(0, 1), k.transpose(0, 1)
    mask = torch.full((1, s, s), torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype)
    cu = seen["cu_seqlens"].tolist()
    for lo, hi in zip(cu[:-1], cu[1:]):
        mask[..., lo:hi, lo:hi] = 0
    weights = torch.matmul(q, k.transpose(1, 2)) / math.sqrt(q.size(-1)) + mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
    unit = visual.spatial_merge_size ** 2
    score = weights.sum(0).mean(0).view(-1, unit).mean(1)  # window order
    grids = [TokenGrid.from_thw(g, patch=visual.patch_size, merge=visual.spatial_merge_size) for g in grid_thw]
    order = window_index(grids, window_size=visual.window_size).to(score.device)
    return score[torch.argsort(order)]


__all__ = ["received_attention"]
