"""``litelvlm.explore``: look at what a pruning method keeps, in a notebook or in one self-contained web page.

``explore(image, texts, model=None, methods=None)`` returns the notebook widget (:class:`Explorer`): a budget slider
and a method selector over the kept tokens on the family's own token grid (LiteLVLM's similarity-aware and
context-aware parts in their own colours), the per-token CLIP similarity to [EOS] with the referent's outline, the
text tokens with their last-layer attention rows, and the predicted mask on demand. ``litelvlm explore ... --out
page.html`` writes the same views as one HTML file (:mod:`litelvlm.explore.page`). This is this project's own tool.
"""

from __future__ import annotations

from .data import DEFAULT_METHODS, DEFAULT_MODEL, ExploreData, Kept, load
from .widget import Explorer

__all__ = ["DEFAULT_METHODS", "DEFAULT_MODEL", "ExploreData", "Explorer", "Kept", "explore", "load"]


def explore(image: str, texts: str | list[str], model: str | None = None, methods: list[str] | None = None,
            seed: int = 0, precompute: bool = True):
    """The notebook explorer of ``image`` and its expression(s) ``texts`` with ``model`` (default: the tiny random
    GLaMM); ``methods`` default to :data:`DEFAULT_METHODS` (those the model runs)."""
    data = load(image, [texts] if isinstance(texts, str) else list(texts), model=model, methods=methods, seed=seed)
    return Explorer(data, precompute=precompute)


def __getattr__(name: str):
    if name == "Explorer":
        return Explorer
    raise AttributeError(name)
