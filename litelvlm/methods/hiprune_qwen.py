"""HiPrune's Qwen2.5-VL variant: anchors, buffers and registers among the merged tokens, from the vision
tower's attention.

Official source: Danielement321/HiPrune @ 6e83a12, ``Qwen2_5_VL/qwen2_5_vl_HiPrune.py``. ``registers="fill"``
and the object layer on other depths are this project's adaptations.

Details, the official statements with their lines and the deviations: docs/methods/hiprune_qwen.md
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import LiteLVLMError
from ..method import Method
from ..pruning.selection import Selection, check_budget
from ..switches import check_one_of
from .hiprune import anchors_and_buffers

if TYPE_CHECKING:
    from ..llm.context import LLMContext
    from ..qwen_vision.vision import QwenVision

#: The official defaults (``bench_qwen.sh``: ``HIPRUNE_ALPHA``, ``HIPRUNE_OBJECT_LAYER``) for Qwen2.5-VL's
#: 32-block vision tower (3B and 7B alike).
ALPHA, OBJECT_LAYER, OFFICIAL_DEPTH = 0.1, 16, 32
#: how the blocks' attention weights are computed: the flash-attention class's (the benchmark's, over every
#: patch) or the eager class's (a window block's masked to its windows)
ATTENTIONS = ("flash", "eager")
#: what happens where the official registers repeat an anchor or buffer: fewer than K kept as the official
#: code keeps them (``official``), refused (``refuse``), or filled to K (``fill``, this project's extension)
REGISTERS = ("official", "refuse", "fill")


def default_object_layer(depth: int) -> int:
    """The official object layer (16) on a 32-block tower; on another depth the same relative depth,
    ``round(16 * depth / 32)`` (at least 1): this project's adaptation."""
    return OBJECT_LAYER if depth == OFFICIAL_DEPTH else max(1, round(OBJECT_LAYER * depth / OFFICIAL_DEPTH))


def block_weights(vision: QwenVision, block: int, seen: dict, attention: str = "flash") -> torch.Tensor:
    """(heads, P, P) the attention weights block ``block`` returns in the official code (window order): the
    flash class's, over every patch in the tower's dtype (L201-211), or the eager class's (L266-280)."""
    if attention == "eager":
        return vision.block_attention(block, seen)
    q, k, _ = vision.block_qk(block, seen)
    attn_logits = torch.matmul(q, k.transpose(-1, -2))
    attn_logits = attn_logits / (q.shape[-1] ** 0.5)
    return torch.nn.functional.softmax(attn_logits, dim=-1)


@torch.no_grad()
def block_scores(vision: QwenVision, blocks: list[int], attention: str = "flash") -> dict[int, torch.Tensor]:
    """{block: (N,) its score per merged token, LLM order}: weights averaged over heads, summed over the query
    patches, averaged over each merge unit, un-permuted (the tower's L571-576)."""
    check_one_of("attention", attention, ATTENTIONS)
    depth = len(vision.visual.blocks)
    blocks = sorted({b % depth for b in blocks})
    seen = vision.block_inputs(blocks)
    return {b: vision.to_llm_order(block_weights(vision, b, seen[b], attention).mean(dim=0).sum(dim=0))
            for b in blocks}


def registers_for(deep: torch.Tensor, anchored: torch.Tensor, budget: int, registers: str) -> torch.Tensor:
    """The register tokens: top-k (``K - |anchored|``) of ``deep`` minus 1 on ``anchored`` (L1876-1880); with
    ``fill``, each repeated anchor or buffer replaced by the next best token not kept yet."""
    n = deep.shape[0]
    taken = torch.zeros(n, dtype=torch.bool, device=deep.device)
    taken.scatter_(0, anchored, 1)
    lowered = deep - taken.int()
    picked = torch.topk(lowered, k=budget - anchored.shape[0]).indices
    repeats = int(taken[picked].sum())
    if repeats == 0 or registers != "fill":
        return picked
    taken[picked] = True
    more = torch.topk(lowered.masked_fill(taken, float("-inf")), k=repeats).indices
    return torch.cat([picked, more])


def hiprune_qwen(ctx: LLMContext, budget: int, *, alpha: float = ALPHA, object_layer: int | None = None,
                 attention: str = "flash", registers: str = "official") -> Selection:
    """HiPrune on Qwen2.5-VL's merged tokens: ``round(K * alpha / 5)`` anchors from the object layer (1-based;
    default
    :func:`default_object_layer`) with their buffers, then registers from the last block; LLM order."""
    n = ctx.num_visual
    check_budget(budget, n)
    vision = ctx.pipeline.vision(ctx.prepared)
    depth = len(vision.visual.blocks)
    object_layer = default_object_layer(depth) if object_layer is None else int(object_layer)
    if not 1 <= object_layer <= depth:
        raise LiteLVLMError(f"object_layer must be in 1..{depth} (1-based); got {object_layer}")
    scores = block_scores(vision, [object_layer - 1, depth - 1], attention)
    if scores[depth - 1].shape[0] != n:
        raise AssertionError(f"the tower gives {scores[depth - 1].shape[0]} merged tokens; the LLM receives "
                             f"{n}")
    return select_tokens(scores[object_layer - 1], scores[depth - 1], budget, vision.grids()[0].llm_w,
                         alpha=alpha, registers=registers)


def select_tokens(shallow: torch.Tensor, deep: torch.Tensor, budget: int, width: int, *, alpha: float = ALPHA,
                  registers: str = "official") -> Selection:
    """The selection (L1854-1896) from the object layer's and the last block's (N,) scores on a merged grid
    ``width`` tokens wide: the kept tokens in the LLM's order; ``scores`` the last block's."""
    n = deep.shape[0]
    check_budget(budget, n)
    check_one_of("registers", registers, REGISTERS)
    anchored = anchors_and_buffers(shallow, round(budget * float(alpha) / 5), width)
    if anchored.shape[0] > budget:
        raise LiteLVLMError(f"HiPrune: {anchored.shape[0]} anchor and buffer tokens exceed K = {budget} "
                            f"(alpha {alpha}); the official code's top-k crashes here: lower alpha or raise "
                            "K")
    picked = registers_for(deep, anchored, budget, registers)
    keep = torch.zeros(n, dtype=torch.bool, device=deep.device)
    keep[torch.cat([anchored, picked])] = True
    indices = torch.nonzero(keep).flatten()
    if indices.shape[0] != budget and registers == "refuse":
        raise LiteLVLMError(f"HiPrune's official Qwen2.5-VL code keeps {indices.shape[0]} tokens, not K = "
                            f"{budget}, on this image (its registers pick an anchor or buffer token again: "
                            "the last block's score minus 1 still ranks it); registers='official' keeps "
                            "those as the official code does, registers='fill' (this project's extension) "
                            "keeps K")
    return Selection(indices=indices, scores=deep,
                     parts={"anchors_and_buffers": anchored, "registers": picked},
                     short=indices.shape[0] < budget)


HIPRUNE_QWEN = Method("llm-input", hiprune_qwen, host_sync=True, ranks=True, positions="keep",
                      reads_vision_blocks=True, tower_attention_weights=True,
                      name="hiprune", backbone="qwen2.5-vl",
                      description=("HiPrune, its official Qwen2.5-VL code: anchors (object-layer 16 of "
                                   "32 attention of the vision tower) with their 4 neighbours, then "
                                   "registers (last block) among the merged tokens; LLM order, original "
                                   "M-RoPE positions"))
