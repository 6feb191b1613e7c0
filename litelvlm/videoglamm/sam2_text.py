"""SAM 2 prompted by VideoGLaMM's ``[SEG]`` embedding, frame by frame, on transformers' ``Sam2Model``.

Official source: mbzuai-oryx/VideoGLaMM @ 6b15b1e, ``VideoGLaMM/model/VideoGLaMM.py``
``inference_framewise``.

Details: docs/videoglamm.md (``litelvlm.videoglamm.sam2_text``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import Sam2Model

from ..models.channel_stats import IMAGENET_MEAN_255, IMAGENET_STD_255
from ..models.sam_resize import preprocess_shape

#: ``sam_preprocess``'s defaults (``utils/sam_transforms.py`` L28-29): SAM's pixel mean and std in 0-255 units
PIXEL_MEAN, PIXEL_STD = IMAGENET_MEAN_255, IMAGENET_STD_255


def sam2_pixels(frame: np.ndarray, size: int = 1024) -> torch.Tensor:
    """``(1, 3, size, size)`` float32 of an ``(H, W, 3)`` uint8 frame (``sam_preprocess``, model_type
    ``sam2``)."""
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    h, w = preprocess_shape(image.height, image.width, size)
    x = torch.from_numpy(np.array(image.resize((w, h), Image.BILINEAR))).permute(2, 0, 1).contiguous()
    mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(PIXEL_STD, dtype=torch.float32).view(-1, 1, 1)
    x = ((x - mean) / std).unsqueeze(0)
    return F.interpolate(x, (size, size), mode="bilinear")


class Sam2Text(nn.Module):
    """transformers' ``Sam2Model`` with VideoGLaMM's ``[SEG]``-embedding prompt (docs/videoglamm.md)."""

    def __init__(self, config, image_size: int) -> None:
        super().__init__()
        self.model = Sam2Model(config)
        self.image_size = int(image_size)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.mask_decoder.iou_token.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.mask_decoder.iou_token.weight.device

    def preprocess(self, frame: np.ndarray) -> torch.Tensor:
        """An ``(H, W, 3)`` uint8 frame -> ``(1, 3, S, S)`` pixels in the model's dtype and device."""
        return sam2_pixels(frame, self.image_size).to(self.device, self.dtype)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """``(1, 3, S, S)`` -> the decoder's three feature maps (stride 4, 8, and 16 with
        ``no_mem_embed``)."""
        return self.model.get_image_embeddings(pixels.to(self.device, self.dtype))

    def decode(self, features: list[torch.Tensor], prompts: torch.Tensor,
               original_size: tuple[int, int]) -> torch.Tensor:
        """Mask logits ``(S, H, W)`` float32 of S ``[SEG]`` embeddings ``(S, C)`` on one frame's features."""
        return self.upscale(self.decode_low(features, prompts), original_size)

    def decode_low(self, features: list[torch.Tensor], prompts: torch.Tensor) -> torch.Tensor:
        """``(S, 1, h, w)`` low-resolution mask logits (the decoder's, model dtype) of S ``[SEG]``
        embeddings."""
        pe = self.model.get_image_wide_positional_embeddings()
        prompt_encoder = self.model.prompt_encoder
        h, w = prompt_encoder.image_embedding_size
        dense = prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, h, w)
        out = []
        for token in prompts.to(self.device, self.dtype):
            sparse = token.reshape(1, 1, 1, -1)
            masks, _, _, _ = self.model.mask_decoder(
                image_embeddings=features[-1], image_positional_embeddings=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=False, high_resolution_features=features[:-1])
            out.append(masks[0])                                         # (1, 1, h, w)
        return torch.cat(out) if out else features[-1].new_zeros(0, 1, 4 * h, 4 * w)

    @staticmethod
    def upscale(low: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """``(S, 1, h, w)`` -> ``(S, H, W)`` float32 logits at the frame's size (bilinear, L757-763)."""
        H, W = (int(v) for v in original_size)
        return F.interpolate(low.float(), (H, W), mode="bilinear", align_corners=False)[:, 0]


__all__ = ["Sam2Text", "sam2_pixels"]
