"""VisPruner on Qwen2.5-VL (UniPixel, Sa2VA's Qwen presets):
this project's adaptation (no official Qwen2.5-VL code of it could be read). It keeps or merges the LLM-input
merged tokens (``ctx.visual_embeds``) by its official rule, through the very functions its GLaMM (LLaVA-1.5)
module uses on CLIP's grid, reading :mod:`litelvlm.qwen_vision.cls_stand_in` (what stands in for CLIP's [CLS]
attention and keys) in place of CLIP's. It acts at the LLM input; option ``block``: the tower block the
stand-in reads. It re-runs the tower once per image (``reads_vision_blocks``; efficiency refuses it).

* ``vispruner``: ``int(K * important_ratio)`` tokens of highest score, then the even/odd duplicate removal
  over the rest in descending-score order, measured on the LLM-input tokens
  (:func:`~litelvlm.methods.vispruner.important_and_diverse`); the LLM gets them in its order. The score is
  summed over heads (GLaMM's VisPruner averages: a constant factor, the same ranking).

It keeps single tokens, which keep their M-RoPE ids under UniPixel's rule.
"""

from __future__ import annotations

import torch

from ..method import Method
from ..pruning.selection import Selection, check_budget
from ..qwen_vision.cls_stand_in import STAND_IN, STAND_IN_FLAGS, stand_in
from .vispruner import STEP, important_and_diverse


def vispruner(ctx, budget: int, *, important_ratio: float = 0.5, step: int = STEP,
              block: int | None = None) -> Selection:
    """VisPruner on the merged tokens: important tokens by the stand-in score, then diverse ones; the LLM's
    order."""
    check_budget(budget, ctx.num_visual)
    s = stand_in(ctx, block)
    important, diverse = important_and_diverse(s.score, ctx.visual_embeds.detach(), budget, important_ratio,
                                               step)
    idx = torch.sort(torch.cat([important, diverse])).values
    return Selection(indices=idx, scores=s.score, parts={"important": important, "diverse": diverse})


VISPRUNER = Method("llm-input", vispruner, tower_attention_weights=True, **STAND_IN_FLAGS,
                   name="vispruner", backbone="qwen2.5-vl",
                   description=("VisPruner on Qwen2.5-VL's merged tokens, " + STAND_IN
                                + ": important tokens by it + diverse tokens, at the LLM input"))
