"""PruMerge and PruMerge+ on Qwen2.5-VL (UniPixel, Sa2VA's Qwen presets):
this project's adaptation (no official Qwen2.5-VL code of it could be read). It keeps or merges the LLM-input
merged tokens (``ctx.visual_embeds``) by its official rule, through the very functions its GLaMM (LLaVA-1.5)
module uses on CLIP's grid, reading :mod:`litelvlm.qwen_vision.cls_stand_in` (what stands in for CLIP's [CLS]
attention and keys) in place of CLIP's. It acts at the LLM input; option ``block``: the tower block the
stand-in reads. It re-runs the tower once per image (``reads_vision_blocks``; efficiency refuses it).

* ``prumerge`` / ``prumerge+``: the weights are the score divided by its sum (one distribution over the
  tokens, as the [CLS] row over the patches); adaptive mode (``adaptive=True``, or ``budget=None``) keeps the
  IQR outliers of the weights (PruMerge+: and its spatial samples over the N merged tokens in the LLM's
  order), fixed K the top K - 1 (PruMerge+: a quarter by weight, the rest evenly spaced), as on GLaMM
  (:func:`~litelvlm.methods.prumerge.adaptive_kept`, :func:`~litelvlm.methods.prumerge.fixed_kept`);
  each kept token plus the weighted sum of its 32 nearest tokens by the full-width keys (heads concatenated),
  then one extra token (index -2) merging every pruned token
  (:func:`~litelvlm.methods.prumerge.merged_selection`).

The tokens they pass are merged, so they have no original position (``original_positions=False``: the sequence
is renumbered).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..method import Method
from ..pruning.selection import Selection, check_budget
from ..qwen_vision.cls_stand_in import STAND_IN, STAND_IN_FLAGS, stand_in
from . import prumerge as _pm


def prumerge_kept(weights: torch.Tensor, budget: int | None, plus: bool, adaptive: bool | None,
                  top_share: float = _pm.TOP_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention-ranked, spatial) kept tokens for K (``adaptive``: the IQR outliers, None: adaptive when no
    K)."""
    if adaptive is None:
        adaptive = budget is None
    if adaptive:
        top, spatial = _pm.adaptive_kept(weights, plus)
        if budget is not None and top.numel() + spatial.numel() + 1 != budget:
            raise LiteLVLMError(f"{'prumerge+' if plus else 'prumerge'} with adaptive=True keeps "
                                f"{top.numel() + spatial.numel() + 1} tokens for this image, not {budget}; "
                                "pass budget=adaptive_budget(ctx) (litelvlm.methods.prumerge_qwen)")
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



def prumerge(ctx, budget: int | None = None, *, adaptive: bool | None = None,
             cluster_size: int = _pm.CLUSTER_SIZE, block: int | None = None) -> Selection:
    """PruMerge on the merged tokens: the stand-in weights' outliers (fixed K: the top K - 1), merged, +
    extra."""
    return _prumerge(ctx, budget, False, adaptive, _pm.TOP_SHARE, cluster_size, block)



def prumerge_plus(ctx, budget: int | None = None, *, adaptive: bool | None = None,
                  top_share: float = _pm.TOP_SHARE,
                  cluster_size: int = _pm.CLUSTER_SIZE, block: int | None = None) -> Selection:
    """PruMerge+ on the merged tokens: PruMerge's tokens plus spatial samples, merged, + the extra token."""
    return _prumerge(ctx, budget, True, adaptive, top_share, cluster_size, block)



def adaptive_budget(ctx, plus: bool = False, *, block: int | None = None) -> int:
    """K of the adaptive selection for ``ctx``'s image (outliers [+ samples] + 1; up to N + 1)."""
    top, spatial = _pm.adaptive_kept(stand_in(ctx, block).weights().to(ctx.visual_embeds.dtype), plus)
    return top.numel() + spatial.numel() + 1


PRUMERGE = Method("llm-input", prumerge, extra_tokens=1, original_positions=False,
                  tower_attention_weights=True, **STAND_IN_FLAGS,
                  name="prumerge", backbone="qwen2.5-vl",
                  description=("PruMerge on Qwen2.5-VL's merged tokens, " + STAND_IN
                               + ": IQR outliers (fixed K: top K-1) merged by key similarity + one extra "
                                 "token"))
PRUMERGE_PLUS = Method("llm-input", prumerge_plus, extra_tokens=1, original_positions=False,
                       tower_attention_weights=True, **STAND_IN_FLAGS,
                       name="prumerge+", backbone="qwen2.5-vl",
                       description=("PruMerge+ on Qwen2.5-VL's merged tokens, " + STAND_IN
                                    + ": PruMerge + spatially uniform samples, merged + one extra token"))
