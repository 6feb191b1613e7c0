"""What the studies' help and labels say of the families, asked of their cards
(:mod:`litelvlm.registry.families`): no study names a family. Light (imports only the cards)."""

from __future__ import annotations

from litelvlm.models.family_card import FamilyCard
from litelvlm.registry.families import cards


def names(selected: list[FamilyCard]) -> str:
    """The display names of ``selected`` cards, as a help text lists them (``GLaMM``, ``UniPixel and
    Sa2VA``)."""
    shown = [c.display_name for c in selected]
    return " and ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)


def official_protocol_families() -> str:
    """The families with an official multi-expression protocol (their card's ``official_sample``)."""
    return names([c for c in cards() if c.official_sample])


def paper_family() -> FamilyCard:
    """The family of the paper's model (the first card with a ``paper_preset``)."""
    return next(c for c in cards() if c.paper_preset)


#: the reversal's ``--grid`` value that ranks the similarity on CLIP's own patches (any other names a family's
#: merged grid, :mod:`analysis.common.measures.merged_grid`)
CLIP_GRID = "clip"


def merged_grid_families() -> list[str]:
    """The families whose card declares a merged grid onto which an external CLIP's scores are mapped (their
    card's ``merged_grid``), in registry order."""
    return [c.name for c in cards() if c.merged_grid]


def merged_grid_names() -> str:
    """The display names of :func:`merged_grid_families`."""
    return names([c for c in cards() if c.merged_grid])


def video_families() -> str:
    """The families with a video path for ``eval-video`` (their card's ``video_eval``)."""
    return names([c for c in cards() if c.video_eval])


__all__ = ["CLIP_GRID", "merged_grid_families", "merged_grid_names", "names", "official_protocol_families",
           "paper_family", "video_families"]
