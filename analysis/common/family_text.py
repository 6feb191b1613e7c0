"""What the studies' help and labels say of the families, asked of their cards (:mod:`litelvlm.families`): no study
names a family. Light (imports only the cards)."""

from __future__ import annotations

from litelvlm.families import cards
from litelvlm.family_card import FamilyCard


def names(selected: list[FamilyCard]) -> str:
    """The display names of ``selected`` cards, as a help text lists them (``GLaMM``, ``UniPixel and Sa2VA``)."""
    shown = [c.display_name for c in selected]
    return " and ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)


def official_protocol_families() -> str:
    """The families with an official multi-expression protocol (their card's ``official_sample``)."""
    return names([c for c in cards() if c.official_sample])


def paper_family() -> FamilyCard:
    """The family of the paper's model (the first card with a ``paper_preset``)."""
    return next(c for c in cards() if c.paper_preset)


def merged_grid_families() -> str:
    """The families that map an external CLIP's scores onto their merged grid (their card's ``merged_grid``)."""
    return names([c for c in cards() if c.merged_grid])


def video_families() -> str:
    """The families with a video path for ``eval-video`` (their card's ``video_eval``)."""
    return names([c for c in cards() if c.video_eval])


__all__ = ["merged_grid_families", "names", "official_protocol_families", "paper_family", "video_families"]
