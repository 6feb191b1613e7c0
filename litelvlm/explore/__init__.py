from __future__ import annotations

from ..lazy import lazy_exports
from .defaults import DEFAULT_METHODS, DEFAULT_MODEL

#: name -> where it is defined (imported on first use: the explorer runs models, so its modules import torch)
_WHERE = {"ExploreData": "litelvlm.explore.data", "Kept": "litelvlm.explore.data",
          "load": "litelvlm.explore.data", "Explorer": "litelvlm.explore.widget"}

__all__ = ["DEFAULT_METHODS", "DEFAULT_MODEL", "ExploreData", "Explorer", "Kept", "explore", "load"]


def explore(image: str, texts: str | list[str], model: str | None = None, methods: list[str] | None = None,
            seed: int = 0, precompute: bool = True):
    """The notebook explorer of ``image`` and its expression(s) ``texts`` with ``model`` (default: the tiny
    random GLaMM); ``methods`` default to :data:`DEFAULT_METHODS` (those the model runs)."""
    data = __getattr__("load")(image, [texts] if isinstance(texts, str) else list(texts), model=model,
                               methods=methods, seed=seed)
    return __getattr__("Explorer")(data, precompute=precompute)


__getattr__ = lazy_exports(__name__, _WHERE)
