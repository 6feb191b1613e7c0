"""SAM 2 prompted by an LLM's hidden state, on transformers' ``Sam2Model``: the image path on one frame.

Details: docs/sam2.md (`litelvlm.sam2.prompt`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import Sam2Model

from ..models.channel_stats import IMAGENET_MEAN, IMAGENET_STD  # SAM 2's input normalisation
from .config import NO_OBJ_SCORE


class Sam2Masks(NamedTuple):
    """What :meth:`Sam2Prompt.decode` returns for S seg tokens."""

    low_res: torch.Tensor       # (S, 1, image_size / 4, image_size / 4) logits of the chosen mask
    logits: torch.Tensor        # (S, H, W) at the original size
    iou: torch.Tensor           # (S, 3) predicted IoU of the three candidate masks
    object_score: torch.Tensor  # (S,) object-score logit (<= 0: the mask is NO_OBJ_SCORE everywhere)

    @property
    def masks(self) -> torch.Tensor:
        """(S, H, W) bool: ``logits > 0`` (UniPixel's ``qwen2_5_vl.py`` L366)."""
        return self.logits > 0


class Sam2Prompt(nn.Module):
    """transformers' ``Sam2Model`` (image encoder, prompt encoder, mask decoder) with a hidden-state prompt;
    ``image_size`` is the square SAM input. A family's subclass changes :meth:`decode` only through
    :attr:`mask_dtype` and :attr:`gate_object_score` (the loop itself exists once, here)."""

    #: the decoder's masks are cast to this dtype before the gate and the choice (None: kept in the model's
    #: dtype)
    mask_dtype: torch.dtype | None = None
    #: every mask of a prompt whose object score is not positive set to ``NO_OBJ_SCORE`` (SAM 2's inference
    #: mode)
    gate_object_score: bool = True

    def __init__(self, config, image_size: int) -> None:
        super().__init__()
        self.model = Sam2Model(config)
        self.image_size = int(image_size)
        expected = config.prompt_encoder_config.image_size
        if expected != self.image_size:
            raise ValueError(f"Sam2Config is for {expected}-pixel inputs, not {self.image_size}")

    @property
    def dtype(self) -> torch.dtype:
        return self.model.mask_decoder.iou_token.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.model.mask_decoder.iou_token.weight.device

    @property
    def hidden_dim(self) -> int:
        """SAM 2's prompt width (the ``sam_dim`` of the LLM's prompt head)."""
        return self.model.mask_decoder.iou_token.weight.shape[-1]

    def preprocess(self, image) -> torch.Tensor:
        """A PIL image or an ``(H, W, 3)`` uint8 array -> ``(1, 3, S, S)`` pixels in the model's dtype and
        device: :meth:`on_device` of :meth:`pixels`."""
        return self.on_device(self.pixels(image))

    def on_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """:meth:`pixels` moved to the model's device and cast to its dtype."""
        return pixels.to(self.device, self.dtype)

    def pixels(self, image) -> torch.Tensor:
        """A PIL image or an ``(H, W, 3)`` uint8 array -> ``(1, 3, S, S)`` pixels on the CPU, before the move
        (``get_sam2_transform``: ``ToTensor``, ``Resize((S, S), antialias=True)``, ``Normalize``)."""
        arr = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}")
        video = torch.from_numpy(np.array(arr, copy=True))[None]
        x = video.float().permute(0, 3, 1, 2) / 255
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                          antialias=True)
        mean, std = x.new_tensor(IMAGENET_MEAN)[None, :, None, None], x.new_tensor(IMAGENET_STD)[
            None, :, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def encode_image(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """``(1, 3, S, S)`` -> the three feature maps the decoder reads: ``conv_s0`` of stride 4, ``conv_s1``
        of stride 8, and the stride-16 map plus ``no_mem_embed`` (what the per-image work keeps)."""
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"expected (B, 3, {self.image_size}, {self.image_size}) pixels, "
                             f"got {tuple(pixel_values.shape)}")
        return self.model.get_image_embeddings(pixel_values.to(self.device, self.dtype))

    def image_pe(self) -> torch.Tensor:
        """``(1, C, h, w)`` dense positional encoding (``PositionEmbeddingRandom.forward``,
        position_encoding.py L158-174: in float32, cast to the weights' dtype)."""
        h, w = self.model.prompt_encoder.image_embedding_size
        gauss = self.model.shared_image_embedding.positional_embedding
        grid = torch.ones((h, w), device=gauss.device, dtype=torch.float32)
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        coords = 2 * torch.stack([x, y], dim=-1) - 1
        coords = 2 * np.pi * (coords @ gauss.to(torch.float32))
        pe = torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1).to(gauss.dtype)
        return pe.permute(2, 0, 1)[None]

    def prompt_embeddings(self, seg_token: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``(T, C)`` prompt -> sparse ``(1, 1, 2 + T, C)`` and dense ``(1, C, h, w)`` embeddings."""
        pe = self.model.prompt_encoder
        pad = pe.not_a_point_embed.weight.expand(2, -1)
        sparse = torch.cat([pad, seg_token.to(pad.dtype)], dim=0)[None, None]
        h, w = pe.image_embedding_size
        dense = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, h, w)
        return sparse, dense

    def decode(self, features: list[torch.Tensor], seg_tokens: torch.Tensor,
               original_size: tuple[int, int]) -> Sam2Masks:
        """Masks of S prompts ``(S, T, C)`` on one image's ``features`` (:meth:`encode_image`), at the
        original ``(H, W)``; see docs/sam2.md for each step. The prompts are cast to SAM 2's dtype
        (UniPixel runs the LLM and SAM 2 in one dtype). Differentiable in the prompts (the saliency oracle's
        mask target)."""
        if seg_tokens.dim() != 3 or seg_tokens.shape[-1] != self.hidden_dim:
            raise ValueError(f"expected (S, T, {self.hidden_dim}) seg tokens, got {tuple(seg_tokens.shape)}")
        if features[-1].shape[0] != 1:
            raise ValueError(f"decode takes one image's features, got a batch of {features[-1].shape[0]}")
        H, W = (int(v) for v in original_size)
        pe = self.image_pe()
        low, ious, scores = [], [], []
        for token in seg_tokens.to(self.device):
            sparse, dense = self.prompt_embeddings(token)
            masks, iou, _, obj = self.model.mask_decoder(
                image_embeddings=features[-1], image_positional_embeddings=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense, multimask_output=True, high_resolution_features=features[:-1])
            masks, iou, obj = masks[0], iou[0], obj[0]                      # (1, 3, h, w), (1, 3), (1, 1)
            if self.mask_dtype is not None:
                masks = masks.to(self.mask_dtype)
            if self.gate_object_score:
                masks = torch.where(obj[:, :, None, None] > 0, masks, NO_OBJ_SCORE)
            best = torch.argmax(iou, dim=-1)
            low.append(masks[torch.arange(1, device=masks.device), best].unsqueeze(1))
            ious.append(iou)
            scores.append(obj[:, 0])
        low_res = torch.cat(low)
        return Sam2Masks(low_res, self.upscale(low_res, (H, W)), torch.cat(ious), torch.cat(scores))

    @staticmethod
    def upscale(low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(S, H, W) logits at the original size from (S, 1, h, w) ones: bilinear, ``align_corners=False``, in
        the logits' dtype (``sam2_video_predictor.py`` L454-474)."""
        H, W = (int(v) for v in original_size)
        if tuple(low_res.shape[-2:]) == (H, W):
            return low_res[:, 0]
        return F.interpolate(low_res, size=(H, W), mode="bilinear", align_corners=False)[:, 0]


__all__ = ["Sam2Masks", "Sam2Prompt"]
