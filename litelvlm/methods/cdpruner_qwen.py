"""CDPruner on Qwen2.5-VL (UniPixel): the conditional DPP of ``litelvlm.methods.cdpruner`` over the merged
visual tokens, its relevance measured in the LLM's input space (``litelvlm.llm.relevance``).

This project's adaptation (no official Qwen2.5-VL code exists): the kernel and greedy MAP inference are the
official CDPruner code's (Theia-4869/CDPruner @ 9541616), the relevance OpenVINO GenAI's.

Details, the official statements with their lines and the deviations: docs/methods/cdpruner_qwen.md
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..llm.relevance import prompt_relevance
from ..method import Method
from ..pruning.selection import Selection
from .cdpruner import conditional_dpp

if TYPE_CHECKING:
    from ..llm.context import LLMContext


def cdpruner_qwen(ctx: LLMContext, budget: int) -> Selection:
    """CDPruner at the LLM input of a Qwen2.5-VL family: the conditional DPP over the N merged tokens,
    conditioned on their LLM-space relevance to the prompt's instruction."""
    relevance = prompt_relevance(ctx.pipeline, ctx.prepared, ctx.visual_embeds)
    return conditional_dpp(ctx.visual_embeds, relevance, budget)


CDPRUNER_QWEN = Method("llm-input", cdpruner_qwen,
                       name="cdpruner", backbone="qwen2.5-vl",
                       description=("CDPruner on Qwen2.5-VL (this project's adaptation): CDPruner's "
                                    "conditional DPP over the merged tokens, relevance in the LLM's "
                                    "input space (cosine with the mean instruction-token embedding, as "
                                    "OpenVINO's Qwen port scores it), raster order"))
