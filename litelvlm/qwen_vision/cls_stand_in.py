"""A stand-in for CLIP's [CLS] attention and keys on Qwen2.5-VL's vision tower (this project's adaptation).

For the Qwen2.5-VL variants of VisionZip, VisPruner, PruMerge and PruMerge+; everything here is this
project's definition.

Details: docs/qwen.md (``litelvlm.qwen_vision.cls_stand_in``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .vision import QwenVision
from .vit_attention import received_from

#: the ``Method`` flags of every method reading the stand-in: it ranks tokens, re-runs the vision tower
#: (``reads_vision_blocks``) and reads tensor values in Python (``host_sync``)
STAND_IN_FLAGS = dict(ranks=True, host_sync=True, reads_vision_blocks=True)
#: what every such variant's description says of the stand-in
STAND_IN = ("this project's adaptation (no official Qwen2.5-VL code read): the attention each merged token "
            "receives in the tower's last full-attention block stands for the [CLS] attention, its keys "
            "averaged over each 2x2 merge unit for CLIP's keys")


@dataclass(frozen=True)
class StandIn:
    """The stand-in of one image: ``score`` (M,) and ``keys`` (M, heads, d), both in the LLM's token order."""

    score: torch.Tensor
    keys: torch.Tensor
    block: int

    def head_mean_keys(self) -> torch.Tensor:
        """(M, d) keys averaged over heads (VisionZip's merge metric)."""
        return self.keys.mean(1)

    def full_width_keys(self) -> torch.Tensor:
        """(M, heads * d) keys with the heads concatenated (PruMerge's keys, the full width)."""
        return self.keys.flatten(1)

    def weights(self) -> torch.Tensor:
        """(M,) ``score`` divided by its sum: one distribution over the tokens, as the [CLS] row over the
        patches."""
        return self.score / self.score.sum()


def default_block(visual) -> int:
    """The last full-attention block of the tower (``fullatt_block_indexes[-1]``; the last block if none is
    named)."""
    full = getattr(visual, "fullatt_block_indexes", None) or [len(visual.blocks) - 1]
    return int(full[-1]) % len(visual.blocks)


def block_keys(vision: QwenVision, block: int, seen: dict) -> torch.Tensor:
    """(M, heads, d) block ``block``'s keys (after the vision RoPE) averaged over each merged token's patches,
    in the LLM's order, from the block's captured inputs ``seen``."""
    _, k, _ = vision.block_qk(block, seen)                          # (heads, P, d), window order
    return vision.to_llm_order(k.permute(0, 2, 1)).permute(2, 0, 1)


@torch.no_grad()
def compute_stand_in(vision: QwenVision, block: int | None = None) -> StandIn:
    """The :class:`StandIn` of one image from one forward of its tower (``block``: default
    :func:`default_block`)."""
    blocks = len(vision.visual.blocks)
    block = default_block(vision.visual) if block is None else int(block) % blocks
    seen = vision.block_inputs([block])[block]
    return StandIn(score=received_from(vision, block, seen), keys=block_keys(vision, block, seen),
                   block=block)


def stand_in(ctx, block: int | None = None) -> StandIn:
    """The :class:`StandIn` of ``ctx``'s image (``ctx.pipeline.vision(ctx.prepared)``), cached in the prepared
    image's ``clip_cache``, on the device of ``ctx.visual_embeds``."""
    cache = ctx.prepared.clip_cache
    key = ("qwen-stand-in", block)
    if key not in cache:
        cache[key] = compute_stand_in(ctx.pipeline.vision(ctx.prepared), block)
    return _on(cache[key], ctx.visual_embeds.device)


def _on(s: StandIn, device: torch.device) -> StandIn:
    return StandIn(score=s.score.to(device), keys=s.keys.to(device), block=s.block)


__all__ = ["StandIn", "block_keys", "compute_stand_in", "default_block", "stand_in"]
