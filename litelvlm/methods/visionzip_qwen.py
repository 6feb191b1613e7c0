"""VisionZip on Qwen2.5-VL (UniPixel, Sa2VA's Qwen presets):
this project's adaptation (no official Qwen2.5-VL code of it could be read). It keeps or merges the LLM-input
merged tokens (``ctx.visual_embeds``) by its official rule, through the very functions its GLaMM (LLaVA-1.5)
module uses on CLIP's grid, reading :mod:`litelvlm.qwen_vision.cls_stand_in` (what stands in for CLIP's [CLS]
attention and keys) in place of CLIP's. It acts at the LLM input; option ``block``: the tower block the
stand-in reads. It re-runs the tower once per image (``reads_vision_blocks``; efficiency refuses it).

* ``visionzip``: the top D tokens by the score are dominant (no [CLS] to count among them, so D real tokens:
  :func:`~litelvlm.methods.visionzip.split_budget`'s D = floor(K * 27/32 + 1/2)), in the LLM's order; the
  other tokens are merged into C = K - D contextual tokens (target + mean of its assigned tokens) by the
  head-averaged keys (:func:`~litelvlm.methods.visionzip.dominant_split`,
  :func:`~litelvlm.methods.visionzip.contextual_tokens`); the LLM gets ``[dominant, contextual]``.

The tokens it passes are merged, so they have no original position (``original_positions=False``: the sequence
is renumbered).
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.selection import Selection, check_budget
from ..qwen_vision.cls_stand_in import STAND_IN, STAND_IN_FLAGS, stand_in
from .visionzip import DOMINANT_SHARE, contextual_tokens, dominant_split, split_budget


def visionzip(ctx, budget: int, *, dominant_share: float = DOMINANT_SHARE,
              block: int | None = None) -> Selection:
    """VisionZip on the merged tokens: D dominant tokens by the stand-in score, C contextual ones merged by
    its keys."""
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


VISIONZIP = Method("llm-input", visionzip, original_positions=False, tower_attention_weights=True,
                   **STAND_IN_FLAGS,
                   name="visionzip", backbone="qwen2.5-vl",
                   description=("VisionZip on Qwen2.5-VL's merged tokens, " + STAND_IN
                                + ": dominant tokens by it + contextual tokens merged by the keys, at the "
                                  "LLM input"))
