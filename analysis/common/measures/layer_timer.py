"""The paper's "Prefill Time": a timer around the LLM's decoder-layer loop only (:class:`LayerLoopTimer`, in
:mod:`litelvlm.cost.timing`, where the families' cost descriptions time with it)."""

from __future__ import annotations

from litelvlm.cost.timing import LayerLoopTimer, llm_layers

__all__ = ["LayerLoopTimer", "llm_layers"]
