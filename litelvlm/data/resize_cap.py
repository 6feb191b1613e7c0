"""The one cap on how large a side any image preprocessing may resize an image to, checked before it resizes.

A resize that keeps the aspect ratio turns a very thin image into a very long one: CLIP's shortest-edge resize
makes a 6000 x 1 image 2,016,000 x 336 pixels (2 GB of uint8, more as floats), and LLaVA's pad-to-square makes
a 1 x 600,000 image a 600,000-pixel square. :data:`MAX_RESIZED_SIDE` bounds every such intermediate side; an
image past it is refused with one :class:`LiteLVLMError` naming the file (when known), its size, the resized
size and the cap, before any pixel is resized. A side below 1 pixel (SAM's longest-side resize of a 1 x 3000
image) is refused the same way.
"""

from __future__ import annotations

from typing import Any

from ..errors import LiteLVLMError

#: The largest side (pixels) any preprocessing step may produce. At CLIP's 336-pixel short side this is
#: 176 M pixels, just under the 179 M (2 x ``PIL.Image.MAX_IMAGE_PIXELS``) at which PIL refuses to open a file
#: as a decompression bomb; a 4000 x 3 image (448,000 x 336 at 336) passes, a 6000 x 1 one (2,016,000) does
#: not.
MAX_RESIZED_SIDE = 1 << 19

#: the key under which :func:`litelvlm.data.refer.open_rgb` records an image's file in ``Image.info``
SOURCE_KEY = "litelvlm_source"


def image_label(image: Any) -> str:
    """How a message names an image: its file (recorded by ``open_rgb``, or PIL's ``filename``) or 'an
    image'."""
    info = getattr(image, "info", None) or {}
    source = info.get(SOURCE_KEY) or getattr(image, "filename", "")
    return f"image {str(source)!r}" if source else "an image"


def check_resize(image: Any, size: tuple[int, int], resized: tuple[int, int], step: str) -> None:
    """Refuse resizing ``image`` of ``size`` (width, height) to ``resized`` (width, height) in ``step`` (say
    "CLIP's shortest-edge resize") when a resized side is past :data:`MAX_RESIZED_SIDE` or below 1 pixel."""
    if max(resized) <= MAX_RESIZED_SIDE and min(resized) >= 1:
        return
    why = (f"past the cap of {MAX_RESIZED_SIDE} pixels a side (MAX_RESIZED_SIDE)" if max(resized)
           > MAX_RESIZED_SIDE
           else "a side below 1 pixel")
    raise LiteLVLMError(f"{image_label(image)} of {size[0]} x {size[1]} (width x height) would be resized to "
                        f"{resized[0]} x {resized[1]} by {step}: {why}; refused before resizing")
