"""SAM (grounding encoder) input preprocessing and mask post-processing exactly as GLaMM does them.

Details: docs/grounding.md (``litelvlm.glamm.sam_preprocess``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import SamImageProcessor

from ..clip.hf import hub_reachable
from ..data.resize_cap import check_resize
from ..errors import LiteLVLMError
from ..models.channel_stats import IMAGENET_MEAN_255, IMAGENET_STD_255
from ..models.sam_resize import preprocess_shape

#: SAM's pixel mean and std in 0-255 units (``ReferSegmDataset.IMG_MEAN``/``IMG_STD``, ``Sam.pixel_mean``)
PIXEL_MEAN, PIXEL_STD = IMAGENET_MEAN_255, IMAGENET_STD_255


def sam_inputs(image: Image.Image, size: int = 1024,
               device: torch.device | str | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """SAM pixel values ``(1, 3, size, size)`` float32 and the resized (h, w) before padding, as GLaMM's
    dataset makes them: PIL bilinear resize of the uint8 RGB image (longest side ``size``), then
    ``(x - PIXEL_MEAN) / PIXEL_STD`` and zero padding at the bottom and right. ``device``: where the
    normalising and padding run (default the CPU): the resized uint8 image goes there, a quarter of the float
    pixels' bytes, and the same correctly rounded float32 operations give the same pixels."""
    resized, reshaped = sam_resized(image, size)
    return sam_normalised(resized.to(device), size), reshaped


def sam_resized(image: Image.Image, size: int = 1024) -> tuple[torch.Tensor, tuple[int, int]]:
    """(the (h, w, 3) uint8 RGB image resized with its longest side ``size``, (h, w)): the CPU half of
    :func:`sam_inputs` (a loader thread's part)."""
    h, w = preprocess_shape(image.height, image.width, size)
    check_resize(image, image.size, (w, h), f"SAM's longest-side resize to {size}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    resized = np.array(image.resize((w, h), Image.BILINEAR))  # what torchvision's resize does for PIL
    return torch.from_numpy(resized), (h, w)


def sam_normalised(resized: torch.Tensor, size: int = 1024) -> torch.Tensor:
    """``(1, 3, size, size)`` float32 SAM pixel values of an (h, w, 3) uint8 image (:func:`sam_resized`),
    normalised and padded where it lies: the other half of :func:`sam_inputs`."""
    h, w = int(resized.shape[0]), int(resized.shape[1])
    x = resized.permute(2, 0, 1).contiguous()  # uint8 (3, h, w)
    mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    std = torch.tensor(PIXEL_STD, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    x = (x - mean) / std
    x = F.pad(x, (0, size - w, 0, size - h))
    return x.unsqueeze(0)


def postprocess_masks(low_res_logits: torch.Tensor, reshaped: tuple[int, int], original_size: tuple[int, int],
                      size: int = 1024) -> torch.Tensor:
    """Mask logits ``(S, H, W)`` at the original image size from the decoder's ``(S, 1, h, w)`` low-res
    logits (``Sam.postprocess_masks``: bilinear to ``size`` x ``size``, crop to ``reshaped``, bilinear
    to ``original_size``; float32)."""
    masks = F.interpolate(low_res_logits.float(), (size, size), mode="bilinear", align_corners=False)
    masks = masks[..., : reshaped[0], : reshaped[1]]
    masks = F.interpolate(masks, tuple(int(s) for s in original_size), mode="bilinear", align_corners=False)
    return masks[:, 0]


def sam_processor(sam: str):
    """transformers' ``SamImageProcessor`` from a folder or a hub id: the local cache first, the hub
    only when it answers (otherwise the hub client retries for about 30 s before failing)."""
    try:
        return SamImageProcessor.from_pretrained(sam, local_files_only=True)
    except OSError as e:
        if os.path.isdir(sam) or not hub_reachable():
            raise LiteLVLMError(f"could not load the SAM image processor from {sam!r}: not a folder with "
                                "preprocessor_config.json, and not in the local Hugging Face cache "
                                f"({e})") from e
    try:
        return SamImageProcessor.from_pretrained(sam)
    except OSError as e:
        raise LiteLVLMError(f"could not load the SAM image processor from {sam!r}: {e}") from e
