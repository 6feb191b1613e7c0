"""A model string resolved once: which family's model it is, and what it names (a random preset and seed, a
folder and its ``config.json``, a released checkpoint's hub id), as one frozen value that travels.

:func:`litelvlm.registry.families.resolve` makes it where a command or ``load_pipeline`` gets a model string,
from the registered cards (:func:`resolve_in`); every check of the string and its folder is made there, in the
one wording of :mod:`litelvlm.models.model_folder` (a folder lacking config.json, weights or a family's
architecture, an unknown preset, a bad seed). The value is a :class:`~litelvlm.models.model_spec.ModelSpec`,
so it writes, compares and hashes as its text wherever a model string goes (a table, a run's ``config.json``,
a message), and the families' lookups (card, input, N, default CLIP, hub folder) read it instead of the
folder. This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

from ..models.family_card import FamilyCard, Lazy
from ..models.model_folder import (
    architecture_error,
    declared_architectures,
    no_model_error,
    read_config,
    require_weights,
)
from ..models.model_spec import ModelSpec

#: what kind of weights a resolved model string loads
RANDOM_PRESET = "random preset"     # ``<name>-random[:SEED]``: built, written to the cache, loaded back
RANDOM_FOLDER = "random folder"     # a folder this project wrote with random weights (``litelvlm_random``)
CHECKPOINT = "checkpoint"           # a checkpoint folder (released weights, or converted ones)
HUB_ID = "hub id"                   # a released checkpoint's hub id: downloaded when it loads
WEIGHTS = (RANDOM_PRESET, RANDOM_FOLDER, CHECKPOINT, HUB_ID)


class ResolvedModel(ModelSpec):
    """One model string of a family, resolved: its text (as a :class:`ModelSpec`), the family's ``card``,
    ``weights`` (one of :data:`WEIGHTS`), ``preset`` (the random preset it builds, or the one a random folder
    records; None for a checkpoint or a hub id), ``seed`` (a random model's), ``path`` and ``config`` (a
    folder's path and its ``config.json`` as read once; None for a preset, written when it loads, and a hub
    id; ``folder`` stays the string's, as on every :class:`ModelSpec`).
    A family that holds several backbones reads its backbone from ``preset`` or ``config``.

    Frozen, and a value rather than a dataclass: an options dataclass holding it (``--model``) is recorded by
    ``dataclasses.asdict`` with the model as its text, as before."""

    FIELDS = ("card", "weights", "preset", "seed", "path", "config")
    card: FamilyCard
    weights: str
    preset: str | None
    seed: int | None
    path: Path | None
    config: dict[str, Any] | None

    def __new__(cls, model: str, card: FamilyCard, weights: str, preset: str | None = None,
                seed: int | None = None, path: Path | None = None,
                config: dict[str, Any] | None = None) -> ResolvedModel:
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {weights!r}")
        out = super().__new__(cls, str(model))
        for name, value in zip(cls.FIELDS, (card, weights, preset, seed, path, config), strict=True):
            object.__setattr__(out, name, value)
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple:
        # resolved again where it is unpickled (a card holds read-only mappings, which do not pickle)
        return Lazy("litelvlm.registry.families", "resolve").get(), (self.text,)

    def __copy__(self) -> ResolvedModel:
        return self

    def __deepcopy__(self, memo: dict) -> ResolvedModel:
        return self

    @property
    def family(self) -> str:
        """The family's name (its card's)."""
        return self.card.name

    @property
    def is_preset(self) -> bool:
        """A random preset (``<name>-random[:SEED]``): its folder is written when it loads."""
        return self.weights == RANDOM_PRESET

    @property
    def random_weights(self) -> bool:
        """Random weights: a random preset, or a folder this project wrote with random weights."""
        return self.weights in (RANDOM_PRESET, RANDOM_FOLDER)


def _random_record(card: FamilyCard, config: dict) -> tuple[str | None, int | None] | None:
    """(preset, seed) a folder's config records of its random weights (``litelvlm_random``: ``preset`` or
    GLaMM's ``arch``; or a ``litelvlm_arch`` of no released preset); None: released weights."""
    rnd = config.get("litelvlm_random")
    if isinstance(rnd, dict):
        preset = rnd.get("preset", rnd.get("arch"))
        return (None if preset is None else str(preset)), int(rnd.get("seed", 0))
    arch = config.get("litelvlm_arch")
    if isinstance(arch, dict) and arch.get("name") not in card.released_presets:
        return (None if arch.get("name") is None else str(arch["name"])), None
    return None


def resolve_in(model: str | ModelSpec, cards: Iterable[FamilyCard]) -> ResolvedModel:
    """``model`` resolved among ``cards`` (a resolved value is itself): a random preset by its name (its seed
    checked), a released checkpoint's hub id by the cards' ``hub_ids`` (no local folder of that name), else a
    folder: its ``config.json`` read once, its ``architectures`` naming the family, its weights present. Each
    failure is one line naming the model string (:mod:`litelvlm.models.model_folder`)."""
    if isinstance(model, ResolvedModel):
        return model
    spec, cards = ModelSpec.of(model), list(cards)
    for card in cards:
        if (preset := card.preset(spec)) is not None:
            return ResolvedModel(spec, card, RANDOM_PRESET, preset, card.seed(spec))
    folder = Path(spec.folder)
    hub = next((c for c in cards if spec.folder in c.hub_ids), None)
    if hub is not None and not folder.is_dir():
        return ResolvedModel(spec, hub, HUB_ID)
    if not (folder / "config.json").is_file():
        raise no_model_error(spec, [name for c in cards for name in c.presets])
    config = read_config(folder)
    declared = declared_architectures(spec, config)
    card = next((c for c in cards if set(declared) & set(c.architectures)), None)
    if card is None:
        raise architecture_error(spec, declared, None, sorted(a for c in cards for a in c.architectures))
    require_weights(spec, folder)
    record = _random_record(card, config)
    if record is None:
        return ResolvedModel(spec, card, CHECKPOINT, path=folder, config=config)
    return ResolvedModel(spec, card, RANDOM_FOLDER, *record, path=folder, config=config)


def of_family(resolved: ResolvedModel, card: FamilyCard) -> ResolvedModel:
    """``resolved``, refused with one line when it is another family's model than ``card``'s."""
    if resolved.card.name != card.name:
        declared = (resolved.config or {}).get("architectures") or list(resolved.card.architectures[:1])
        raise architecture_error(resolved.text, declared, card.display_name, card.architectures,
                                 theirs=resolved.card.display_name)
    return resolved


__all__ = ["CHECKPOINT", "HUB_ID", "RANDOM_FOLDER", "RANDOM_PRESET", "WEIGHTS", "ResolvedModel", "of_family",
           "resolve_in"]
