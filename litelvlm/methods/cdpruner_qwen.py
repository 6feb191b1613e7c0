"""CDPruner on Qwen2.5-VL (UniPixel): the conditional DPP of :mod:`litelvlm.methods.cdpruner` over the merged
visual tokens (the LLM input embeddings), its relevance measured in the LLM's input space
(:mod:`litelvlm.llm.relevance`).

This project's adaptation (no official Qwen2.5-VL code of CDPruner's authors exists): CDPruner's official
relevance (Theia-4869/CDPruner @9541616, ``llava_arch.py`` L141-188) is the negative cosine of CLIP's image
embeds with CLIP's text embeds, and Qwen2.5-VL's tower has no CLIP joint space. The relevance here is the one
OpenVINO GenAI's CDPruner port scores Qwen tokens with (openvinotoolkit/openvino.genai @da1db86, transcribed
in tests/litelvlm/llm/test_relevance.py): the positive cosine of each merged token with the mean of the
prompt's instruction-token embeddings, min-max normalised. The kernel ``r_i S_ij r_j`` (``S`` the cosine of
the LLM input embeddings) and the greedy MAP inference are the official CDPruner code's, the same statements
as the GLaMM path (:func:`litelvlm.methods.cdpruner.conditional_dpp`; its deviation 1, K distinct tokens once
the kernel's rank is exhausted, included); the kept tokens enter the LLM in raster order. OpenVINO's own
kernel and selection are NOT reproduced: it blends ``(1 - w) S + w r_i S_ij r_j`` (``w = relevance_weight``,
default 0.5), splits the tokens into two halves selected separately (``CDPRUNER_SPLIT_THRESHOLD``) and sets
its budget by a pruning percentage.

It reads no text encoder (``needs_text`` off): the instruction's embeddings are the LLM's own input embeddings
of the prompt, a table lookup of the tokens every method feeds the LLM anyway.
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
