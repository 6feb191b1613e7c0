"""``--image-resize``: one option definition for every command that runs a model whose family resizes the LLM's
image with a processor of its own (Sa2VA's Qwen2-VL processor; :attr:`litelvlm.family_card.FamilyCard.image_resizes`).

The same help text, the same refusal for a model whose family offers no such resize (before the model loads), the
same ``config.json`` record (only for a family that has a resize, so that every other family's folders stay as they
were) and the same pipeline keyword for ``eval-grounding``, ``eval-video``, ``importance``, ``positions``,
``validate``, ``select``, ``explore`` and ``retention``. Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from .cli_args import arg
from .errors import LiteLVLMError
from .families import card_of, cards, names_family

#: ``--image-resize`` names: the first is the official one (the fast Qwen2-VL processor's torchvision resize)
IMAGE_RESIZES: tuple[str, ...] = ("torchvision", "pil")
IMAGE_RESIZE_HELP = ("a family whose processor resizes the LLM's image (Qwen2-VL's): torchvision "
                     "(Qwen2VLImageProcessorFast, what the official pin loads) or pil (the slow processor's PIL "
                     "bicubic; this project's option)")


def image_resize_arg() -> Any:
    """The ``--image-resize`` dataclass field of a command's options (a fresh field per options class)."""
    return arg(IMAGE_RESIZES[0], help=IMAGE_RESIZE_HELP, choices=list(IMAGE_RESIZES))


def _resizes(model: str) -> tuple[str, ...]:
    """The resizes ``model``'s family offers; none for a model of no family (a CLIP)."""
    return card_of(model).image_resizes if names_family(model) else ()


def check_image_resize(value: str, model: str) -> None:
    """Refuse ``--image-resize value`` (not the default) for a model whose family's card does not offer it."""
    if value != IMAGE_RESIZES[0] and value not in _resizes(model):
        offered = ", ".join(c.name for c in cards() if value in c.image_resizes)
        raise LiteLVLMError(f"--image-resize {value}: model {model!r} is of a family whose processor offers no such "
                            f"resize (offered by: {offered})")


def image_resize_record(value: str, model: str) -> dict[str, str]:
    """What a run's ``config.json`` records of ``--image-resize``: the resize for a family whose card offers one (so
    that a folder written with another resize, its numbers apart, is not resumed), nothing for any other family (its
    folders stay as they were)."""
    return {"image_resize": value} if _resizes(model) or value != IMAGE_RESIZES[0] else {}


def image_resize_kwargs(value: str) -> dict[str, str]:
    """The pipeline's keyword for ``--image-resize``: only a non-default resize (the families' options differ)."""
    return {} if value == IMAGE_RESIZES[0] else {"image_resize": value}
