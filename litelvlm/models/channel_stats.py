"""The per-channel mean and std images are normalised with, declared once (red, green, blue): ImageNet's,
which SAM, SAM 2, InternViT and InternVideo2 use (on ``uint8 / 255``, or in 0-255 units as SAM's
``pixel_mean``), and OpenAI CLIP's, which CLIP, open_clip's default and Qwen2-VL's image processor use. Each
module that normalises names the one its official code uses, citing it. This module is light (it imports
nothing)."""

from __future__ import annotations

#: ImageNet's channel mean and std, on ``uint8 / 255``
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: the same in 0-255 units (SAM's ``pixel_mean`` / ``pixel_std``: 255 times the above, as its code spells
#: them)
IMAGENET_MEAN_255: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD_255: tuple[float, float, float] = (58.395, 57.12, 57.375)
#: OpenAI CLIP's channel mean and std, on ``uint8 / 255``
OPENAI_CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

__all__ = ["IMAGENET_MEAN", "IMAGENET_MEAN_255", "IMAGENET_STD", "IMAGENET_STD_255", "OPENAI_CLIP_MEAN",
           "OPENAI_CLIP_STD"]
