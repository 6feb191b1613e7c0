"""``none``: no pruning, the unpruned baseline: the LLM receives all N visual tokens in raster order."""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..method import Method
from ..pruning.selection import Selection


def keep_all(ctx: LLMContext, budget: int) -> Selection:
    """All N visual tokens, raster order; a budget other than N is an error."""
    if budget != ctx.num_visual:
        raise LiteLVLMError(f"method 'none' keeps all {ctx.num_visual} tokens; got budget {budget}")
    return Selection(indices=torch.arange(ctx.num_visual))


NONE = Method("llm-input", keep_all, baseline=True,
              name="none",
              description="no pruning: all N visual tokens (the unpruned baseline)")
