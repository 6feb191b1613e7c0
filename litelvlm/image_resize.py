"""``--image-resize``: one option definition for every command that runs a model whose family resizes the
LLM's image with a processor of its own (Sa2VA's Qwen2-VL processor;
:attr:`litelvlm.models.family_card.FamilyCard.image_resizes`).

The same help text, the same refusal for a model whose family offers no such resize (before the model loads),
the same ``config.json`` record (only for a family that has a resize, so that every other family's folders
stay as they were) and the same pipeline keyword for ``eval-grounding``, ``eval-video``, ``importance``,
``positions``, ``validate``, ``select``, ``explore`` and ``retention``; the refusal and the record ask the
    family registry (:func:`litelvlm.registry.families.check_image_resize`,
    :func:`litelvlm.registry.families.image_resize_record`).
Imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from .cli_args import arg

#: ``--image-resize`` names: the first is the official one (the fast Qwen2-VL processor's torchvision resize)
IMAGE_RESIZES: tuple[str, ...] = ("torchvision", "pil")
IMAGE_RESIZE_HELP = ("a family whose processor resizes the LLM's image (Qwen2-VL's): torchvision "
                     "(Qwen2VLImageProcessorFast, what the official pin loads) or pil (the slow processor's "
                     "PIL bicubic; this project's option)")


def image_resize_arg() -> Any:
    """The ``--image-resize`` dataclass field of a command's options (a fresh field per options class)."""
    return arg(IMAGE_RESIZES[0], help=IMAGE_RESIZE_HELP, choices=list(IMAGE_RESIZES))


def image_resize_kwargs(value: str) -> dict[str, str]:
    """The pipeline's keyword for ``--image-resize``: only a non-default resize (the families' options
    differ)."""
    return {} if value == IMAGE_RESIZES[0] else {"image_resize": value}
