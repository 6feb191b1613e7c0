"""Top-similarity: LiteLVLM with the ranking NOT reversed (keeps the tokens MOST similar to the text)."""

from __future__ import annotations

from ..method import Method
from ..pruning.selection import Selection, SelectorInputs
from .litelvlm import litelvlm_select


def clip_topsim(inputs: SelectorInputs, budget: int, **options) -> Selection:
    """The same union-then-context procedure as LiteLVLM, on the K//T HIGHEST-similarity tokens."""
    options["largest"] = True
    return litelvlm_select(inputs, budget, **options)

CLIP_TOPSIM = Method("clip", clip_topsim, needs_text=True, scores_only=True, tower_attention_weights=True,
                     name="clip_topsim",
                     description=("highest CLIP similarity to the text [EOS] (not reversed) + context "
                                  "tokens"))
