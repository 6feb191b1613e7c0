"""Every model family, registered by its card: one line per family, imported on first use.

A family is one package ``litelvlm/<family>/`` whose ``card.py`` holds a
:class:`~litelvlm.models.family_card.FamilyCard` (its name, display name, presets and model strings,
checkpoint architectures, inputs, video path, cost description) and whose pipeline implements
:class:`~litelvlm.lvlm.family.GroundingPipeline`. ``load_pipeline(model, ...)`` reads the model string once
(:class:`~litelvlm.models.model_spec.ModelSpec`), resolves it once (:func:`resolve`: its family by a random
preset's name, a hub id, or the ``architectures`` of a folder's ``config.json``, read once, into a
:class:`~litelvlm.registry.resolved_model.ResolvedModel` that travels) and returns that family's pipeline. The
command line and the studies ask the cards (:func:`cards`, :func:`card`, :func:`card_of`) and never name a
family. A new family is one package and one line in :data:`REGISTERED` (CONTRIBUTING.md). This module imports
nothing heavy.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from functools import cache
from typing import Any

from ..errors import LiteLVLMError
from ..image_resize import IMAGE_RESIZES
from ..models.family_card import FamilyCard, Lazy
from ..models.model_spec import ModelSpec
from ..video.runner import VideoEval
from .resolved_model import ResolvedClip, ResolvedModel, of_family, resolve_in

#: the registered families' cards, in the order commands list them (each a typed reference, imported on first
#: use; ``tests/project/test_typed_wiring.py`` resolves every one)
REGISTERED: tuple[Lazy[FamilyCard], ...] = (
    Lazy("litelvlm.glamm.card", "CARD"),
    Lazy("litelvlm.unipixel.card", "CARD"),
    Lazy("litelvlm.videoglamm.card", "CARD"),
    Lazy("litelvlm.sa2va.card", "CARD"),
)


@cache
def _cards() -> dict[str, FamilyCard]:
    out = {}
    for target in REGISTERED:
        c = target.get()
        if not isinstance(c, FamilyCard):
            raise TypeError(f"{target} is not a litelvlm.models.family_card.FamilyCard")
        out[c.name] = c
    return out


def table() -> dict[str, FamilyCard]:
    """The live registry, name -> card (a test adds a family with ``monkeypatch.setitem(table(), name,
    card)``)."""
    return _cards()


def cards() -> list[FamilyCard]:
    """Every registered family's card, in registration order (imports only the light ``card`` modules)."""
    return list(_cards().values())


def card(name: str) -> FamilyCard:
    """The card of family ``name``; an unknown name is an error suggesting the close ones."""
    return _known(name)


def card_of(model: str | ModelSpec) -> FamilyCard:
    """The card of the family a model string names (:func:`resolve`; a resolved model's own)."""
    return resolve(model).card


def resolve(model: str | ModelSpec | ResolvedModel | ResolvedClip) -> ResolvedModel:
    """``model`` resolved once among the registered families
    (:func:`litelvlm.registry.resolved_model.resolve_in`: a resolved value is itself, so a command resolves
    its ``--model`` once and hands the value down); a string of no family's is one line naming it."""
    return resolve_in(model, _cards().values())


def family_or_clip(model: str | ModelSpec | ResolvedModel | ResolvedClip) -> ResolvedModel | ResolvedClip:
    """``model`` resolved once by the same resolution (:func:`resolve`): a family's model, else a CLIP
    (:class:`~litelvlm.registry.resolved_model.ResolvedClip`, its folder's ``config.json`` read once, which
    the CLIP loader checks): the one resolution at the edge of a command whose ``--model`` takes either."""
    return resolve_in(model, _cards().values(), clip=True)


def family_model(model: str | ModelSpec, family: FamilyCard) -> ResolvedModel:
    """``model`` resolved (:func:`resolve`) as a model of ``family``, a released checkpoint's hub id
    downloaded (:func:`hub_folder`) and resolved as its folder: what a family's loader reads; another family's
    model is one line naming both."""
    return of_family(resolve(model), family).local()


#: the default ``--model`` of the commands that run a grounding model: the first family's documented offline
#: model
DEFAULT_MODEL: str = cards()[0].default_model
#: ``eval-video``'s default model: the documented offline model of the first family whose input is a video
DEFAULT_VIDEO_MODEL: str = next(c.default_model for c in cards() if c.input == "video")


def model_help() -> str:
    """What a ``--model`` taking any family's model accepts: each family's default and the paper's model."""
    return "; ".join(f"{c.display_name}: {c.model_help}" for c in cards())


def question_templates() -> list[str]:
    """The families whose referring-segmentation questions a CLIP study's ``--text-template`` can wrap a
    sentence in."""
    return [c.name for c in cards() if c.questions]


def is_small(model: str) -> bool:
    """Whether ``model`` is a small random preset of a family (such models run fastest on one thread)."""
    return any(c.is_small(model) for c in cards())


def family_names() -> list[str]:
    """Every registered family, sorted (imports nothing)."""
    return sorted(_cards())


def _known(name: str) -> FamilyCard:
    table = _cards()
    if name not in table:
        close = difflib.get_close_matches(name, table, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise LiteLVLMError(f"unknown model family {name!r}{hint}; known families: "
                            f"{', '.join(family_names())}")
    return table[name]


def get_family(name: str) -> type:
    """The pipeline class of family ``name`` (its package imported on first use)."""
    cls = _known(name).pipeline.get()
    # imported by the pipeline's module already
    base = Lazy("litelvlm.lvlm.family", "GroundingPipeline").get()

    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{_known(name).pipeline} is not a litelvlm.lvlm.family.GroundingPipeline")
    return cls


def family_of(model: str | ModelSpec) -> str:
    """The family a model string names (:func:`resolve`; a resolved model's own; imports nothing)."""
    return resolve(model).family


def check_budgets_fit(model: str | ModelSpec | ResolvedModel, budgets: Sequence[Any],
                      option: str = "--budgets") -> None:
    """Refuse a budget above N before anything loads, where ``model``'s card knows N
    (:meth:`ResolvedModel.check_budgets_fit`); a model of no family (a CLIP) is checked where it loads."""
    if (resolved := _resolved_or_none(model)) is not None:
        resolved.check_budgets_fit(budgets, option)


def check_image_model(model: Any, command: str) -> None:
    """Refuse, before anything loads, a model whose family reads a video in the image command ``command``
    (a CLIP or an image family's model passes): one line naming the image families and ``eval-video``."""
    if (resolved := _resolved_or_none(model)) is not None and resolved.input == "video":
        images = ", ".join(sorted(c.name for c in cards() if c.input == "image"))
        raise LiteLVLMError(f"--model {resolved.text}: the {resolved.family} family's input is a video; "
                            f"{command} runs the image families {images} (eval-video runs this one)")


def check_hub_model(model: str | ModelSpec | ResolvedModel) -> None:
    """Refuse, before anything loads, a released checkpoint's hub id that cannot be had: offline
    (``HF_HUB_OFFLINE=1``) with no cached snapshot (:meth:`ResolvedModel.check_hub`); the line names the
    download command."""
    if (resolved := _resolved_or_none(model)) is not None:
        resolved.check_hub()


def hub_folder(model: str | ModelSpec | ResolvedModel) -> str | None:
    """The local folder of ``model`` when it is the hub id of a family's released checkpoint and no local
    folder (:meth:`ResolvedModel.hub_folder`: downloaded into the Hugging Face cache, or the cached snapshot
    offline); a hub id that cannot be had is one line naming the download command. None for any other model
    string."""
    resolved = _resolved_or_none(model)
    return None if resolved is None else resolved.hub_folder()


def family_input(model: str | ResolvedModel) -> str:
    """What the family of ``model`` prepares: ``image`` or ``video`` (imports nothing)."""
    return resolve(model).input


def exif_transpose(model: Any) -> bool:
    """Whether images are decoded turned by their EXIF orientation tag for ``model`` (a model string, a
    resolved model, a family's name or a pipeline), as its family's official evaluation reads them
    (:attr:`ResolvedModel.exif_transpose`). Anything that names no family (a CLIP) follows GLaMM, whose CLIP
    it is."""
    table = _cards()
    if isinstance(model, ResolvedModel):
        return model.exif_transpose
    family = model if isinstance(model, str) and model in table else getattr(model, "family", None)
    if family in table:
        return table[family].exif_transpose
    resolved = _resolved_or_none(model) if isinstance(model, str) else None
    return True if resolved is None else resolved.exif_transpose


def _resolved_or_none(model: Any) -> ResolvedModel | None:
    """``model`` resolved (:func:`resolve`), None where it names no family's model (a CLIP)."""
    if isinstance(model, ResolvedClip):
        return None
    try:
        return resolve(model)
    except LiteLVLMError:
        return None


def names_family(model: str) -> bool:
    """Whether ``model`` names a registered family's model (a random preset, a hub id, or a folder whose
    ``config.json`` declares a family's architectures), not e.g. a CLIP: imports nothing, raises nothing."""
    return _resolved_or_none(model) is not None


def load_pipeline(model: str | ModelSpec | ResolvedModel, **options: Any):
    """The pipeline of ``model`` (any model string of a registered family, resolved once here unless it comes
    resolved: :func:`resolve`), loaded by :meth:`ResolvedModel.load` (the family's
    ``from_model_string(resolved, **options)``; a released checkpoint's hub id downloaded and resolved as its
    folder)."""
    return resolve(model).load(**options)


def video_eval(model: str | ResolvedModel) -> VideoEval:
    """The video path of ``model``'s family (its registry entry's ``video_eval``); a family without one is
    refused with a line naming the model and the families that have one."""
    family = card_of(model)
    target = family.video_eval
    if target is None:
        offered = sorted(c.name for c in cards() if c.video_eval)
        raise LiteLVLMError(f"model {str(model)!r}: the {family.name} family has no video path; eval-video "
                            f"runs the families {', '.join(offered)}")
    out = target.get()
    if not isinstance(out, VideoEval):
        raise TypeError(f"{target} is not a litelvlm.video.runner.VideoEval")
    return out


def _resizes(model: str | ResolvedModel) -> tuple[str, ...]:
    """The resizes ``model``'s family offers; none for a model of no family (a CLIP)."""
    resolved = _resolved_or_none(model)
    return () if resolved is None else resolved.image_resizes


def check_image_resize(value: str, model: str) -> None:
    """Refuse ``--image-resize value`` (not the default) for a model whose family's card does not offer it."""
    if value != IMAGE_RESIZES[0] and value not in _resizes(model):
        offered = ", ".join(c.name for c in cards() if value in c.image_resizes)
        raise LiteLVLMError(f"--image-resize {value}: model {str(model)!r} is of a family whose processor "
                            f"offers no such resize (offered by: {offered})")


def image_resize_record(value: str, model: str) -> dict[str, str]:
    """What a run's ``config.json`` records of ``--image-resize``: the resize for a family whose card offers
    one (so that a folder written with another resize, its numbers apart, is not resumed), nothing for any
    other family (its folders stay as they were)."""
    return {"image_resize": value} if _resizes(model) or value != IMAGE_RESIZES[0] else {}


