"""The explorer's defaults, read by ``litelvlm explore --help`` (light: the registry's cards only)."""

from __future__ import annotations

from ..registry import families

#: the tiny random GLaMM (a family model: kept tokens on its 24 x 24 CLIP grid, masks from its SAM)
DEFAULT_MODEL = families.DEFAULT_MODEL
#: the methods shown when none are named (those a family refuses are left out)
DEFAULT_METHODS = ("litelvlm", "litelvlm-ctx", "clip_topsim", "random", "vispruner")


def image_models() -> list[str]:
    """The documented offline model of each family whose input is an image (what the explorer shows)."""
    return [c.default_model for c in families.cards() if c.input == "image"]


__all__ = ["DEFAULT_METHODS", "DEFAULT_MODEL", "image_models"]
