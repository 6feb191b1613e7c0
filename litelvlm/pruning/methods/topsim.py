"""Top-similarity: LiteLVLM with the ranking NOT reversed (keeps the tokens MOST similar to the text)."""

from __future__ import annotations

from ..registry import Selection, SelectorInputs, register_selector
from .litelvlm import litelvlm_select


@register_selector("clip_topsim", needs_text=True,
                   description="highest CLIP similarity to the text [EOS] (not reversed) + context tokens")
def clip_topsim(inputs: SelectorInputs, budget: int, **options) -> Selection:
    """The same union-then-context procedure as LiteLVLM, on the K//T HIGHEST-similarity tokens."""
    options["largest"] = True
    return litelvlm_select(inputs, budget, **options)
