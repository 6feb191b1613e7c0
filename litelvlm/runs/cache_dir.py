"""Where the cache lives, for the cache itself and for what only names its folders (a figure's weights
banner). This module is light: it imports no torch."""

from __future__ import annotations

import os
from pathlib import Path

#: the cache's subfolder holding every random model
RANDOM_MODELS = "random-models"


def default_cache_dir() -> Path:
    """``$LITELVLM_CACHE`` or ``~/.cache/litelvlm``."""
    return Path(os.environ.get("LITELVLM_CACHE", Path.home() / ".cache" / "litelvlm"))


def random_models_root() -> Path:
    """``$LITELVLM_CACHE/random-models``: the folder of every random model
    (:mod:`litelvlm.models.random_models`)."""
    return default_cache_dir() / RANDOM_MODELS


__all__ = ["RANDOM_MODELS", "default_cache_dir", "random_models_root"]
