"""The LLM-attention oracle: keep the visual tokens that receive the most attention in the unpruned LLM (this
project's oracle, no official code), read through :class:`~litelvlm.llm.context.LLMContext`."""

from __future__ import annotations

import torch

from ..llm.context import LLMContext
from ..method import Method, Option
from ..pruning.selection import Selection
from ..switches import QUERY_KINDS


def llm_attention_select(ctx: LLMContext, budget: int, *, layer: int | None = None,
                         queries: str = "seg") -> Selection:
    """Oracle: keep the ``budget`` visual tokens receiving the most attention (from ``queries`` at
    decoder ``layer``, default the middle layer) in the unpruned LLM; they enter the LLM in raster order."""
    layer = middle_layer(ctx.num_layers)[0] if layer is None else int(layer)
    score = ctx.visual_attention(layer, queries)
    top = torch.topk(score, budget, sorted=True).indices
    return Selection(indices=torch.sort(top).values, scores=score,
                     parts={"ranking": torch.argsort(score, descending=True, stable=True)})


def middle_layer(num_layers: int) -> tuple[int, ...]:
    """The layer whose attention the oracle reads by default: the middle one."""
    return (num_layers // 2,)


#: its command-line options (``--attention-layer``, ``--attention-queries``)
LLM_ATTENTION_OPTIONS = (
    Option("layer", "attention_layer", "0..L-1",
           help="llm-attention: decoder layer (default: the middle one)"),
    Option("queries", "attention_queries", value_type=str, default="seg", choices=QUERY_KINDS,
           help="llm-attention: query rows"),
)

LLM_ATTENTION = Method("llm-input", llm_attention_select, oracle=True, attention_weights=middle_layer,
                       name="llm-attention", options=LLM_ATTENTION_OPTIONS,
                       description=("oracle: rank visual tokens by the attention they receive in the LLM "
                                    "(from the last token, all text tokens or the [SEG]-predicting "
                                    "tokens, at one layer)"))
