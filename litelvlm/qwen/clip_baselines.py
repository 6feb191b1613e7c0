"""VisionZip, VisPruner, PruMerge and PruMerge+ on Qwen2.5-VL: this project's adaptation (no official Qwen2.5-VL code
of these methods could be read; see :mod:`litelvlm.qwen.cls_stand_in`).

Each method reads the shared stand-in for CLIP's [CLS] attention and keys (:func:`litelvlm.qwen.cls_stand_in.stand_in`:
the attention each merged token receives in the tower's last full-attention block, and that block's keys averaged over
each merged token's 4 patches, both in the LLM's order) in place of CLIP's, and keeps or merges the LLM-input merged
tokens (``ctx.visual_embeds``). Otherwise each keeps its own official rule, through the very functions its GLaMM
(LLaVA-1.5) module uses on CLIP's grid:

* ``visionzip``: the top D tokens by the score are dominant (no [CLS] to count among them, so D real tokens:
  :func:`~litelvlm.pruning.methods.visionzip.split_budget`'s D = floor(K * 27/32 + 1/2)), in the LLM's order; the
  other tokens are merged into C = K - D contextual tokens (target + mean of its assigned tokens) by the
  head-averaged keys (:func:`~litelvlm.pruning.methods.visionzip.dominant_split`,
  :func:`~litelvlm.pruning.methods.visionzip.contextual_tokens`); the LLM gets ``[dominant, contextual]``.
* ``vispruner``: ``int(K * important_ratio)`` tokens of highest score, then the even/odd duplicate removal over the
  rest in descending-score order, measured on the LLM-input tokens
  (:func:`~litelvlm.pruning.methods.vispruner.important_and_diverse`); the LLM gets them in its order. The score is
  summed over heads (GLaMM's VisPruner averages: a constant factor, the same ranking).
* ``prumerge`` / ``prumerge+``: the weights are the score divided by its sum (one distribution over the tokens, as
  the [CLS] row over the patches); adaptive mode (``adaptive=True``, or ``budget=None``) keeps the IQR outliers of
  the weights (PruMerge+: and its spatial samples over the N merged tokens in the LLM's order), fixed K the top K - 1
  (PruMerge+: a quarter by weight, the rest evenly spaced), as on GLaMM
  (:func:`~litelvlm.pruning.methods.prumerge.adaptive_kept`, :func:`~litelvlm.pruning.methods.prumerge.fixed_kept`);
  each kept token plus the weighted sum of its 32 nearest tokens by the full-width keys (heads concatenated), then
  one extra token (index -2) merging every pruned token
  (:func:`~litelvlm.pruning.methods.prumerge.merged_selection`).

All four are ``llm-input`` methods (applied at the LLM input); the tokens VisionZip and PruMerge(+) pass are merged,
so they have no original position (``original_positions=False``: the sequence is renumbered), while VisPruner keeps
single tokens, which keep their M-RoPE ids under UniPixel's rule. Option ``block``: the tower block the stand-in
reads (default: the last full-attention block). Each re-runs the tower once per image (``reads_vision_blocks``; the
efficiency study does not count that yet and refuses them).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..method import Method
from ..pruning.methods import prumerge as _pm
from ..pruning.methods.visionzip import DOMINANT_SHARE, contextual_tokens, dominant_split, split_budget
from ..pruning.methods.vispruner import STEP, important_and_diverse
from ..pruning.selection import Selection, check_budget
from .cls_stand_in import stand_in


def visionzip(ctx, budget: int, *, dominant_share: float = DOMINANT_SHARE, block: int | None = None) -> Selection:
    """VisionZip on the merged tokens: D dominant tokens by the stand-in score, C contextual ones merged by its keys."""
    check_budget(budget, ctx.num_visual)
    s = stand_in(ctx, block)
    feats = ctx.visual_embeds
    n_dom, n_ctx = split_budget(budget, dominant_share)
    dominant, remaining = dominant_split(s.score, n_dom)
    out, targets = [feats[dominant]], remaining[:0]
    if n_ctx > 0:
        targets, contextual = contextual_tokens(feats, s.head_mean_keys().to(feats.dtype), remaining, n_ctx)
        out.append(contextual)
    return Selection(indices=torch.cat([dominant, targets]), features=torch.cat(out), scores=s.score,
                     parts={"dominant": dominant, "contextual": targets})


def vispruner(ctx, budget: int, *, important_ratio: float = 0.5, step: int = STEP,
              block: int | None = None) -> Selection:
    """VisPruner on the merged tokens: important tokens by the stand-in score, then diverse ones; the LLM's order."""
    check_budget(budget, ctx.num_visual)
    s = stand_in(ctx, block)
    important, diverse = important_and_diverse(s.score, ctx.visual_embeds.detach(), budget, important_ratio, step)
    idx = torch.sort(torch.cat([important, diverse])).values
    return Selection(indices=idx, scores=s.score, parts={"important": important, "diverse": diverse})


def prumerge_kept(weights: torch.Tensor, budget: int | None, plus: bool, adaptive: bool | None,
                  top_share: float = _pm.TOP_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention-ranked, spatial) kept tokens for K (``adaptive``: the IQR outliers, None: adaptive when no K)."""
    if adaptive is None:
        adaptive = budget is None
    if adaptive:
        top, spatial = _pm.adaptive_kept(weights, plus)
        if budget is not None and top.numel() + spatial.numel() + 1 != budget:
            raise LiteLVLMError(f"{'prumerge+' if plus else 'prumerge'} with adaptive=True keeps "
                                f"{top.numel() + spatial.numel() + 1} tokens for this image, not {budget}; pass "
                                "budget=adaptive_budget(ctx) (litelvlm.qwen.clip_baselines)")
        return top, spatial
    if budget is None:
        raise LiteLVLMError("adaptive=False needs a budget")
    return _pm.fixed_kept(weights, budget, plus, top_share)


def _prumerge(ctx, budget: int | None, plus: bool, adaptive: bool | None, top_share: float, cluster_size: int,
              block: int | None) -> Selection:
    if budget is not None:
        check_budget(budget, ctx.num_visual, 1)
    s = stand_in(ctx, block)
    feats = ctx.visual_embeds
    weights = s.weights().to(feats.dtype)
    top, spatial = prumerge_kept(weights, budget, plus, adaptive, top_share)
    return _pm.merged_selection(feats, weights, s.full_width_keys(), top, spatial, cluster_size)


def prumerge(ctx, budget: int | None = None, *, adaptive: bool | None = None, cluster_size: int = _pm.CLUSTER_SIZE,
             block: int | None = None) -> Selection:
    """PruMerge on the merged tokens: the stand-in weights' outliers (fixed K: the top K - 1), merged, + extra."""
    return _prumerge(ctx, budget, False, adaptive, _pm.TOP_SHARE, cluster_size, block)


def prumerge_plus(ctx, budget: int | None = None, *, adaptive: bool | None = None, top_share: float = _pm.TOP_SHARE,
                  cluster_size: int = _pm.CLUSTER_SIZE, block: int | None = None) -> Selection:
    """PruMerge+ on the merged tokens: PruMerge's tokens plus spatial samples, merged, + the extra token."""
    return _prumerge(ctx, budget, True, adaptive, top_share, cluster_size, block)


def adaptive_budget(ctx, plus: bool = False, *, block: int | None = None) -> int:
    """K of the adaptive selection for ``ctx``'s image (outliers [+ samples] + 1; up to N + 1)."""
    top, spatial = _pm.adaptive_kept(stand_in(ctx, block).weights().to(ctx.visual_embeds.dtype), plus)
    return top.numel() + spatial.numel() + 1


#: each re-runs the vision tower (``reads_vision_blocks``) and reads tensor values in Python (``host_sync``)
_FLAGS = dict(ranks=True, host_sync=True, reads_vision_blocks=True)
VISIONZIP = Method("llm-input", visionzip, original_positions=False, **_FLAGS)
VISPRUNER = Method("llm-input", vispruner, **_FLAGS)
PRUMERGE = Method("llm-input", prumerge, extra_tokens=1, original_positions=False, **_FLAGS)
PRUMERGE_PLUS = Method("llm-input", prumerge_plus, extra_tokens=1, original_positions=False, **_FLAGS)
