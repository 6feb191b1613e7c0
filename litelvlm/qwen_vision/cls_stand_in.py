"""A stand-in for CLIP's [CLS] attention and keys on Qwen2.5-VL's vision tower (this project's adaptation).

VisionZip, VisPruner, PruMerge and PruMerge+ rank CLIP's patches by the attention the [CLS] query pays them
and merge by CLIP's keys, both on CLIP's own patch grid. Qwen2.5-VL's tower has no [CLS] token and hands the
LLM merged tokens (2x2 patches each), so their Qwen2.5-VL variants (:mod:`litelvlm.methods.visionzip_qwen`,
``vispruner_qwen``, ``prumerge_qwen``) read this stand-in instead, from one block of the tower (by default the
last full-attention block, ``fullatt_block_indexes[-1]``: the last block in every Qwen2.5-VL):

* ``score`` (M,): the attention each merged token receives in that block, VScan's Qwen score
  (:func:`litelvlm.qwen_vision.vit_attention.received_from`: softmax attention after the vision RoPE, summed
  over heads, averaged over the query patches and over the token's 4 patches), in the LLM's order;
* ``keys`` (M, heads, d): that block's keys (``QwenVision.block_qk``: after the vision RoPE, as the attention
  reads them) averaged over each merge unit of 4 patches and put in the LLM's order
  (``QwenVision.to_llm_order``).

The features a method keeps or merges are the LLM-input merged tokens (``LLMContext.visual_embeds``: the
family's ``prepared.visual`` unless the caller replaces them). No official Qwen2.5-VL code of these methods
could be read (the mirrored snapshots of VisionZip and VisPruner have none; VisionZip's later Qwen2.5-VL code
is not mirrored), so everything here is this project's definition. The score and keys are computed once per
image (one forward of the tower with a pre-hook on the block) and kept in the prepared image's ``clip_cache``
where it has one.
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
    image's ``clip_cache`` where it has one, on the device of ``ctx.visual_embeds``."""
    cache = ctx.prepared.clip_cache
    key = ("qwen-stand-in", block)
    if cache is None or key not in cache:
        got = compute_stand_in(ctx.pipeline.vision(ctx.prepared), block)
        if cache is None:
            return _on(got, ctx.visual_embeds.device)
        cache[key] = got
    return _on(cache[key], ctx.visual_embeds.device)


def _on(s: StandIn, device: torch.device) -> StandIn:
    return StandIn(score=s.score.to(device), keys=s.keys.to(device), block=s.block)


__all__ = ["StandIn", "block_keys", "compute_stand_in", "default_block", "stand_in"]
