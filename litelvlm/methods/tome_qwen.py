"""ToMe on Qwen2.5-VL (UniPixel): this project's adaptation, not official code.

ToMe (facebookresearch/ToMe @af95e4b) merges tokens inside a ViT's blocks, ``r`` per block; it has no
Qwen2.5-VL code, and Qwen's tower ends in a 2x2 patch merger whose N merged tokens are what the LLM receives.
This variant applies ToMe's rule to those N tokens at the LLM input (an ``llm-input`` method), with the
functions of
:mod:`litelvlm.methods.tome` unchanged (``bipartite_soft_matching``, ``merge_wavg``, ``ToMeState``: the
rule lives once):

* Metric: ToMe's metric is a block's keys averaged over heads (``ToMeAttention`` returns ``k.mean(1)``). Here:
  the keys of Qwen's LAST vision block (a full-attention block), as its attention uses them (after the vision
  RoPE:
  :meth:`litelvlm.qwen_vision.vision.QwenVision.block_qk`), averaged over heads, then over the 4 patches of
  each merge unit, in the LLM's order (``to_llm_order``): one (d,) key per merged token.
* Tokens: the LLM-input merged tokens (``prepared.visual``, or ``visual_embeds``), each of size 1 (sizes count
  merged tokens, so they sum to N).
* Rounds: ToMe's ``r`` per block has no meaning outside the tower. Each round is one
  ``bipartite_soft_matching`` (no class token: Qwen's tower has none, so ``class_token=False``, the official
  default: A = tokens 0, 2, 4,
  ..., B = 1, 3, 5, ... in the current order, r capped at half the tokens) merging ``r = min(cap, T - K)``
  tokens (default: as many as ToMe allows, so about log2(N / K) rounds; ``r=`` sets a smaller constant per
  round), until K remain. Tokens are merged with ``merge_wavg`` (size-weighted means: each output token is the
  mean of the merged tokens it absorbed), and so is the metric for the next round (ToMe port's deviation 2,
  the same statement).

Output (``Selection``): ``features`` (K, h), the merged tokens in the order ToMe leaves them (each round puts
the unmerged A tokens, in ToMe's edge order, before the B tokens), which the LLM receives with renumbered
positions (``original_positions=False``: a merged token has no single original position); ``indices`` (K,)
each output token's representative (the token every round kept as destination); ``parts``: ``assignment`` (N,)
the output row of each merged token, ``size`` (K,) tokens per output, ``rounds`` r of each round. K = N merges
nothing (the tokens as they are; the tower is not re-run). It reads the family's Qwen tower
(``pipeline.vision(prepared)``, a
:class:`~litelvlm.qwen_vision.vision.QwenVision`), so it lives with the Qwen code, not in the families' shared
layer.
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..method import Method
from ..pruning.selection import Selection, check_budget
from . import tome


@torch.no_grad()
def merged_keys(vision, block: int = -1) -> torch.Tensor:
    """(M, d) keys of block ``block`` of Qwen's tower (``QwenVision``), averaged over heads and over each
    merge unit's patches, in the LLM's order."""
    b = block % len(vision.visual.blocks)
    _, k, _ = vision.block_qk(b, vision.block_inputs([b])[b])
    return vision.to_llm_order(k.mean(0).transpose(0, 1)).transpose(0, 1)


def merge_to(x: torch.Tensor, metric: torch.Tensor, budget: int, r: int | None = None
             ) -> tuple[tome.ToMeState, list[int]]:
    """ToMe's matching and size-weighted merging of ``x`` (T, h) by ``metric`` (T, d), rounds of ``r`` merges
    (None: ToMe's cap of half the tokens) until ``budget`` remain; (the state, r of each round)."""
    if not 1 <= budget <= x.shape[0]:
        raise LiteLVLMError(f"budget must be in 1..{x.shape[0]}; got {budget}")
    if r is not None and r < 1:
        raise LiteLVLMError(f"r must be at least 1; got {r}")
    ar = torch.arange(x.shape[0], device=x.device)
    state, metric, rounds = tome.ToMeState(x[None], None, ar, ar.clone()), metric[None], []
    while state.x.shape[1] > budget:
        want = state.x.shape[1] - budget
        m = tome.bipartite_soft_matching(metric, want if r is None else min(r, want), class_token=False)
        size = None if state.size is None else state.size.to(metric.dtype)
        metric, _ = tome.merge_wavg(m, metric, size)
        state.merge(m)
        rounds.append(m.r)
    return state, rounds


def tome_qwen_select(ctx: LLMContext, budget: int, *, r: int | None = None, block: int = -1) -> Selection:
    """ToMe's bipartite soft matching and size-weighted merging of the N merged tokens down to K (module
    docstring)."""
    n = ctx.num_visual
    check_budget(budget, n)
    if budget == n:
        idx = torch.arange(n)
        return Selection(indices=idx, parts={"assignment": idx, "size": torch.ones_like(idx),
                                             "rounds": torch.zeros(0, dtype=torch.long)})
    vision = ctx.pipeline.vision(ctx.prepared)
    metric = merged_keys(vision, block).to(ctx.visual_embeds.device)
    if metric.shape[0] != n:
        raise LiteLVLMError(f"the vision tower gave {metric.shape[0]} merged tokens; the LLM receives {n}")
    state, rounds = merge_to(ctx.visual_embeds, metric, budget, r)
    return Selection(indices=state.rep.cpu(), features=state.x[0],
                     parts={"assignment": state.group.cpu(),
                            "size": torch.bincount(state.group.cpu(), minlength=budget),
                            "rounds": torch.tensor(rounds)})


TOME_QWEN = Method("llm-input", tome_qwen_select, original_positions=False, host_sync=True,
                   reads_vision_blocks=True,
                   name="tome", backbone="qwen2.5-vl",
                   description=("ToMe on Qwen2.5-VL, this project's adaptation (no official Qwen code): "
                                "bipartite soft matching on the last vision block's keys per merged "
                                "token, size-weighted merging of the N merged tokens at the LLM input, "
                                "rounds of up to half until K remain"))
