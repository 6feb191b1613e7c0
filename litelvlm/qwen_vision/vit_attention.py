"""Attention each merged token receives in one block of Qwen2.5-VL's vision tower: VScan's Qwen score.

VScan's Qwen code (Tencent/SelfEvolvingAgent @a82450e, ``VScan/qwen/model/qwen2_5_vl_custom.py`` L342-392 and
the attention weights of ``Qwen2_5_VLVisionSdpaAttention_X``, L466-509, the class its RefCOCO script
``VScan/qwen/eval/test_refcoco.py`` binds; the flash-attention variant, L416-463, rotates q and k a second
time before its weights) computes, in one block of the tower (its "global" score: the last block, a
full-attention one), the softmax attention of every patch over every patch after the vision RoPE (a window
block's attention is masked to its windows), sums it over heads, averages it over the query patches, averages
the 4 patches of each merged token and puts the tokens back in the LLM's order (``argsort(window_index)``).
UniPixel's LiteLVLM can take its context part from this score (this project's adaptation: the tower has no
[CLS] whose query LiteLVLM's own context score reads).

The block's inputs are captured during one ordinary forward of the tower and the attention recomputed from
them (:class:`litelvlm.qwen_vision.vision.QwenVision`).
"""

from __future__ import annotations

import torch

from .vision import QwenVision


@torch.no_grad()
def received_attention(visual, pixel_values: torch.Tensor, grid_thw: torch.Tensor,
                       block: int = -1) -> torch.Tensor:
    """(M,) VScan's score of each merged token of one image or frame group (LLM order), from block ``block``
    of ``visual`` (``Qwen2_5_VisionTransformerPretrainedModel``; default: the last block, VScan's global
    score)."""
    vision = QwenVision(visual, pixel_values, grid_thw)
    block = block % len(visual.blocks)
    return received_from(vision, block, vision.block_inputs([block])[block])


def received_from(vision: QwenVision, block: int, seen: dict) -> torch.Tensor:
    """(M,) VScan's score from block ``block``'s captured inputs ``seen`` (:meth:`QwenVision.block_inputs`):
    the attention summed over heads, averaged over the query patches and over each merged token's patches, LLM
    order."""
    weights = vision.block_attention(block, seen)
    return vision.to_llm_order(weights.sum(0).mean(0))


@torch.no_grad()
def received_attentions(vision: QwenVision, blocks: list[int]) -> dict[int, torch.Tensor]:
    """{block: (M,) VScan's score of each merged token (LLM order) in that block} for several blocks of
    ``vision``'s tower, from one forward (``blocks`` may be negative; the keys are 0-based)."""
    seen = vision.block_inputs(blocks)
    return {block: received_from(vision, block, seen[block]) for block in sorted(seen)}


__all__ = ["received_attention", "received_attentions", "received_from"]
