"""A model string resolved once: which family's model it is, and what it names (a random preset and seed, a
folder and its ``config.json``, a released checkpoint's hub id), as one frozen value that travels and answers
the questions the suite asks of a model (its card, input, N before loading, EXIF rule, resizes, hub folder,
its pipeline).

:func:`litelvlm.registry.families.resolve` makes it where a command or ``load_pipeline`` gets a model string,
from the registered cards (:func:`resolve_in`); every check of the string and its folder is made there, in the
one wording of :mod:`litelvlm.models.model_folder` (a folder lacking config.json, weights or a family's
architecture, an unknown preset, a bad seed). The value is a frozen dataclass, not a string: where a model is
recorded (a table, a run's ``config.json``, a message, a cache key) its :attr:`ResolvedModel.text` is written,
explicitly (``str(model)``; :func:`plain` for a value that may hold one). This module imports nothing
heavy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import range_error
from ..errors import LiteLVLMError
from ..image_resize import IMAGE_RESIZES
from ..models.family_card import FamilyCard, Lazy
from ..models.model_folder import (
    architecture_error,
    declared_architectures,
    no_model_error,
    read_config,
    require_weights,
)
from ..models.model_spec import ModelSpec
from ..models.resolved_clip import ResolvedClip, clip_of
from .hub import check_cached, snapshot

#: what kind of weights a resolved model string loads
RANDOM_PRESET = "random preset"     # ``<name>-random[:SEED]``: built, written to the cache, loaded back
RANDOM_FOLDER = "random folder"     # a folder this project wrote with random weights (``litelvlm_random``)
CHECKPOINT = "checkpoint"           # a checkpoint folder (released weights, or converted ones)
HUB_ID = "hub id"                   # a released checkpoint's hub id: downloaded when it loads
WEIGHTS = (RANDOM_PRESET, RANDOM_FOLDER, CHECKPOINT, HUB_ID)
#: where a family's pipeline class is checked to be one (imported by the pipeline's module already)
_PIPELINE_BASE = Lazy("litelvlm.lvlm.family", "GroundingPipeline")
#: the registered families' resolution, where an unpickled value or a downloaded hub id is resolved again
_RESOLVE = Lazy("litelvlm.registry.families", "resolve")


@dataclass(frozen=True)
class ResolvedModel:
    """One model string of a family, resolved: ``spec`` (the string as read, a
    :class:`~litelvlm.models.model_spec.ModelSpec`), the family's ``card``, ``weights`` (one of
    :data:`WEIGHTS`), ``preset`` (the random preset it builds, or the one a random folder records; None for a
    checkpoint or a hub id), ``seed`` (a random model's), ``path`` and ``config`` (a folder's path and its
    ``config.json`` as read once; None for a preset, written when it loads, and a hub id). A family that holds
    several backbones reads its backbone from ``preset`` or ``config``. Two values are equal when they
    resolve the same string alike; it is written as :attr:`text` (``str``), never as itself."""

    spec: ModelSpec
    card: FamilyCard = field(compare=False, repr=False)
    weights: str
    preset: str | None = None
    seed: int | None = None
    path: Path | None = None
    config: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}; got {self.weights!r}")
        if not isinstance(self.spec, ModelSpec):
            object.__setattr__(self, "spec", ModelSpec.parse(self.spec))

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple:
        # resolved again where it is unpickled (a card holds read-only mappings, which do not pickle)
        return _RESOLVE.get(), (self.text,)

    def __copy__(self) -> ResolvedModel:
        return self

    def __deepcopy__(self, memo: dict) -> ResolvedModel:
        return self

    # -- the string ----------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The model string as written (a plain str): what a table, a ``config.json`` or a message records."""
        return self.spec.text

    @property
    def name(self) -> str:
        """The string's part before its first ``:`` (:attr:`ModelSpec.name`)."""
        return self.spec.name

    @property
    def rest(self) -> str:
        """The string's part after its first ``:`` (:attr:`ModelSpec.rest`)."""
        return self.spec.rest

    @property
    def folder(self) -> str:
        """The path the string names, if it is a folder (:attr:`ModelSpec.folder`)."""
        return self.spec.folder

    # -- the family's answers ------------------------------------------------------------------------------
    @property
    def family(self) -> str:
        """The family's name (its card's)."""
        return self.card.name

    @property
    def input(self) -> str:
        """What the family prepares: ``image`` or ``video``."""
        return self.card.input

    @property
    def is_preset(self) -> bool:
        """A random preset (``<name>-random[:SEED]``): its folder is written when it loads."""
        return self.weights == RANDOM_PRESET

    @property
    def random_weights(self) -> bool:
        """Random weights: a random preset, or a folder this project wrote with random weights."""
        return self.weights in (RANDOM_PRESET, RANDOM_FOLDER)

    @property
    def is_small(self) -> bool:
        """One of the family's small random presets (such models run fastest on one thread)."""
        return self.card.is_small(self.spec)

    @property
    def exif_transpose(self) -> bool:
        """Whether images are decoded turned by their EXIF orientation tag, as the family's official
        evaluation reads them (GLaMM's ``cv2.imread`` turns them; UniPixel's ``PIL.Image.open`` does not)."""
        return self.card.exif_transpose

    @property
    def image_resizes(self) -> tuple[str, ...]:
        """The image resizes the family's processor offers besides the default."""
        return tuple(self.card.image_resizes)

    @property
    def fixed_num_visual(self) -> int | None:
        """N when the card knows it before loading (a fixed-N preset, a released checkpoint's hub id)."""
        return self.card.fixed_num_visual(self.spec)

    def check_budgets_fit(self, budgets: Sequence[Any], option: str = "--budgets") -> None:
        """Refuse a budget above :attr:`fixed_num_visual` before anything loads (the same message as the
        check after loading)."""
        num = self.fixed_num_visual
        for budget in budgets if num is not None else ():
            tokens = getattr(budget, "tokens", budget)
            if isinstance(tokens, int) and tokens > num:
                raise LiteLVLMError(f"{option}: {range_error(tokens, num)} (model {self.text!r})")

    def image_resize_record(self, value: str) -> dict[str, str]:
        """What a run's ``config.json`` records of ``--image-resize``: the resize where the family offers one
        (or it is not the default), nothing otherwise (its folders stay as they were)."""
        return {"image_resize": value} if self.image_resizes or value != IMAGE_RESIZES[0] else {}

    # -- its weights ---------------------------------------------------------------------------------------
    def check_hub(self) -> None:
        """Refuse, before anything loads, a released checkpoint's hub id that cannot be had (offline with no
        cached snapshot)."""
        if self.weights == HUB_ID:
            check_cached(self.folder, self.card)

    def hub_folder(self) -> str | None:
        """The local folder of a released checkpoint's hub id (downloaded, or the cached snapshot offline;
        :func:`litelvlm.registry.hub.snapshot`); None for any other model."""
        return snapshot(self.folder, self.card) if self.weights == HUB_ID else None

    def local(self) -> ResolvedModel:
        """This model with local weights: a hub id downloaded and resolved as its folder, anything else
        itself."""
        return _RESOLVE.get()(self.hub_folder()) if self.weights == HUB_ID else self

    def pipeline_class(self) -> type:
        """The family's pipeline class (its package imported on first use)."""
        cls = self.card.pipeline.get()
        if not (isinstance(cls, type) and issubclass(cls, _PIPELINE_BASE.get())):
            raise TypeError(f"{self.card.pipeline} is not a litelvlm.lvlm.family.GroundingPipeline")
        return cls

    def load(self, **options: Any) -> Any:
        """The family's pipeline of this model (``from_model_string``; a hub id downloaded first)."""
        resolved = self.local()
        return resolved.pipeline_class().from_model_string(resolved, **options)


def plain(value: Any) -> Any:
    """``value`` as it is recorded: a resolved model (or CLIP) as its text, inside lists, tuples and dicts
    too."""
    if isinstance(value, (ResolvedModel, ResolvedClip)):
        return value.text
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def record(options: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` of an options dataclass with each resolved model as its text: what a run's
    ``config.json`` records of its options (as it did when the model string was written as it came)."""
    shallow = {f.name: plain(getattr(options, f.name)) for f in dataclasses.fields(options)}
    plain_options = object.__new__(type(options))
    for key, value in shallow.items():
        object.__setattr__(plain_options, key, value)
    return dataclasses.asdict(plain_options)


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


def _folder_model(spec: ModelSpec, config: dict[str, Any] | None, cards: list[FamilyCard]) -> ResolvedModel:
    """The family's model in the folder ``spec`` names, from its ``config.json`` as read (None: it has none):
    its ``architectures`` naming the family, its weights present; else one line naming the model string."""
    folder = Path(spec.folder)
    if config is None:
        raise no_model_error(spec, [name for c in cards for name in c.presets])
    declared = declared_architectures(spec, config)
    card = next((c for c in cards if set(declared) & set(c.architectures)), None)
    if card is None:
        raise architecture_error(spec, declared, None, sorted(a for c in cards for a in c.architectures))
    require_weights(spec, folder)
    recorded = _random_record(card, config)
    if recorded is None:
        return ResolvedModel(spec, card, CHECKPOINT, path=folder, config=config)
    return ResolvedModel(spec, card, RANDOM_FOLDER, *recorded, path=folder, config=config)


def resolve_in(model: str | ModelSpec | ResolvedModel | ResolvedClip, cards: Iterable[FamilyCard],
               clip: bool = False) -> ResolvedModel | ResolvedClip:
    """``model`` resolved among ``cards`` (a resolved value is itself): a random preset by its name (its seed
    checked), a released checkpoint's hub id by the cards' ``hub_ids`` (no local folder of that name), else a
    folder: its ``config.json`` read once, its ``architectures`` naming the family, its weights present. Each
    failure is one line naming the model string (:mod:`litelvlm.models.model_folder`); with ``clip``, a string
    of no family's is resolved as a CLIP instead (:class:`ResolvedClip`, holding the ``config.json`` read
    here), which the CLIP loader checks."""
    if isinstance(model, ResolvedModel) or (clip and isinstance(model, ResolvedClip)):
        return model
    cards = list(cards)
    if isinstance(model, ResolvedClip):   # the same refusal, from what its resolution read
        return _folder_model(model.spec, model.config, cards)
    spec = ModelSpec.of(model)
    for card in cards:
        if (preset := card.preset(spec)) is not None:
            return ResolvedModel(spec, card, RANDOM_PRESET, preset, card.seed(spec))
    folder = Path(spec.folder)
    hub = next((c for c in cards if spec.folder in c.hub_ids), None)
    if hub is not None and not folder.is_dir():
        return ResolvedModel(spec, hub, HUB_ID)
    config = None
    try:
        if (folder / "config.json").is_file():
            config = read_config(folder)
        return _folder_model(spec, config, cards)
    except LiteLVLMError:
        if not clip:
            raise
        return clip_of(spec, config)   # what its folder holds is the CLIP loader's to check


def of_family(resolved: ResolvedModel, card: FamilyCard) -> ResolvedModel:
    """``resolved``, refused with one line when it is another family's model than ``card``'s."""
    if resolved.card.name != card.name:
        declared = (resolved.config or {}).get("architectures") or list(resolved.card.architectures[:1])
        raise architecture_error(resolved.text, declared, card.display_name, card.architectures,
                                 theirs=resolved.card.display_name)
    return resolved


__all__ = ["CHECKPOINT", "HUB_ID", "RANDOM_FOLDER", "RANDOM_PRESET", "WEIGHTS", "ResolvedClip",
           "ResolvedModel", "clip_of", "of_family", "plain", "record", "resolve_in"]
