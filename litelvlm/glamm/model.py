"""The GLaMM model from standard transformers parts (no vendored modeling code).

``GlammModel`` holds
* ``llava``: ``LlavaForConditionalGeneration`` (CLIP vision tower, 2-layer GELU projector, Llama LLM);
* ``sam``: ``SamModel`` (grounding encoder, prompt encoder, mask decoder);
* ``text_hidden_fcs``: GLaMM's ``[SEG]`` projection ``ModuleList([Sequential(Linear(h,h), ReLU,
  Linear(h,256), Dropout(0))])`` (the layout of GLaMM's checkpoint keys).

The CLIP vision tower can be shared with a ``litelvlm.clip`` backend (``share_vision_tower``),
so one CLIP forward feeds both the LLaVA features and the CLIP-side selectors.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlavaForConditionalGeneration, SamModel

from .config import GlammArch, llava_config, sam_config


class GlammModel(nn.Module):
    """LLaVA + SAM + the [SEG] projection, as in GLaMM-RefSeg."""

    def __init__(self, arch: GlammArch):
        super().__init__()

        self.arch = arch
        self.llava = LlavaForConditionalGeneration(llava_config(arch))
        self.sam = SamModel(sam_config(arch))
        h = arch.llm_hidden
        self.text_hidden_fcs = nn.ModuleList([nn.Sequential(nn.Linear(h, h), nn.ReLU(inplace=True),
                                                            nn.Linear(h, arch.prompt_dim), nn.Dropout(0.0))])

    # -- parts ------------------------------------------------------------------------------
    @property
    def language_model(self) -> nn.Module:
        """The Llama decoder (``LlamaModel``: embed_tokens, layers, norm, rotary_emb)."""
        return self.llava.model.language_model

    @property
    def projector(self) -> nn.Module:
        return self.llava.model.multi_modal_projector

    @property
    def vision_tower(self) -> nn.Module:
        return self.llava.model.vision_tower

    def share_vision_tower(self, clip_model: nn.Module) -> None:
        """Use ``clip_model.vision_model`` (a transformers ``CLIPModel``) as LLaVA's vision tower."""
        self.llava.model.vision_tower.vision_model = clip_model.vision_model

    # -- computations -----------------------------------------------------------------------
    def project(self, clip_features: torch.Tensor) -> torch.Tensor:
        """Projector output (..., h) for CLIP feature-layer tokens (..., W)."""
        return self.projector(clip_features)

    def seg_prompts(self, final_hidden: torch.Tensor) -> torch.Tensor:
        """``text_hidden_fcs`` of final hidden states at the [SEG]-predicting positions: (S, prompt_dim)."""
        return self.text_hidden_fcs[0](final_hidden)

    def decode_masks(self, image_embeddings: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        """Low-resolution mask logits (S, 1, 4h, 4w): each prompt is the only sparse prompt, with
        the no-mask dense embedding, ``multimask_output=False``."""
        sam = self.sam
        _, c, hh, ww = image_embeddings.shape
        pe = sam.get_image_wide_positional_embeddings().to(image_embeddings.dtype)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, c, hh, ww)
        # (image batch 1, S prompts, 1 token, C)
        sparse = prompts.to(image_embeddings.dtype)[None, :, None, :]
        low, _ = sam.mask_decoder(image_embeddings=image_embeddings, image_positional_embeddings=pe,
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=False)
        return low[0]  # (S, 1, 4h, 4w)

    def decode_masks_many(self, image_embeddings: list[torch.Tensor],
                          prompts: list[torch.Tensor]) -> list[torch.Tensor]:
        """:meth:`decode_masks` of several images ((1, C, h, w) each, with their (S_i, C) prompts) in one
        mask-decoder call: every (image, prompt) pair is one decoder batch row, as ``decode_masks`` makes one
        row per prompt (the decoder repeats the image per prompt); the rows never mix. Returns each image's
        (S_i, 1, 4h, 4w)."""
        sam = self.sam
        counts = [int(p.shape[0]) for p in prompts]
        emb = torch.cat([e.expand(n, -1, -1, -1) for e, n in zip(image_embeddings, counts, strict=True)])
        rows, c, hh, ww = emb.shape
        pe = sam.get_image_wide_positional_embeddings().to(emb.dtype).expand(rows, -1, -1, -1)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(rows, c, hh, ww)
        sparse = torch.cat(prompts).to(emb.dtype)[:, None, None, :]  # (rows, 1 prompt, 1 token, C)
        low, _ = sam.mask_decoder(image_embeddings=emb, image_positional_embeddings=pe,
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=False)
        return list(low[:, 0].split(counts))  # (rows, 1, 4h, 4w) split per image
