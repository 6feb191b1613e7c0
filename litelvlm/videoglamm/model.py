"""VideoGLaMM's modules on current transformers, and its video forward up to the [SEG] embeddings.

Official source: mbzuai-oryx/VideoGLaMM @ 6b15b1e, ``VideoGLaMM/model/VideoGLaMM.py``.

Details: docs/videoglamm.md (``litelvlm.videoglamm.model``).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModel, Phi3ForCausalLM

from ..llm.captured import runner_of
from ..llm.context import run_layers
from .config import CHUNK_SIZE, IMAGE_TOKEN_INDEX, VideoGLaMMPreset, sam2_config
from .hf_config import clip_config, phi3_config
from .internvideo2 import InternVideo2Tower
from .sam2_text import Sam2Text
from .scratch_attention import Scratch, scratch_eager

#: widths the projectors take (``multimodal_projector/builder.py`` L23-25): InternVideo2 1408, CLIP 1024 for
#: the real towers; a preset's own widths otherwise.


def apply_adaptive_avg_pooling(x: torch.Tensor, shape: tuple[int, int] = (12, 12)) -> torch.Tensor:
    """(B, N, C) with N square -> (B, h*w, C) (arch.py L88-96; asserts N is a square)."""
    b, num_tokens, c = x.shape
    h = int(math.sqrt(num_tokens))
    assert h * h == num_tokens
    x = x.permute(0, 2, 1).reshape(b, -1, h, h)
    x = F.adaptive_avg_pool2d(x, shape)
    return x.flatten(2).transpose(1, 2)


def projector(kind: str, n_in: int, n_out: int) -> nn.Module:
    """``build_vision_projector`` (builder.py L17-53): ``linear`` or ``mlp2x_gelu`` (Linear, GELU, Linear)."""
    if kind == "linear":
        return nn.Linear(n_in, n_out)
    return nn.Sequential(nn.Linear(n_in, n_out), nn.GELU(), nn.Linear(n_out, n_out))


def text_hidden_fcs(hidden: int, out_dim: int) -> nn.ModuleList:
    """VideoGLaMM.py L134-142: ``ModuleList([Sequential(Linear, ReLU, Linear, Dropout(0))])``."""
    return nn.ModuleList([nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                        nn.Linear(hidden, out_dim), nn.Dropout(0.0))])


@dataclass
class VideoTokens:
    """What the vision side gives the LLM for one video."""

    clip: torch.Tensor            # (T, 576, 1024): CLIP patch tokens per frame, before projection and pooling
    video: torch.Tensor           # (T // 4, 4 * 256, 1408): InternVideo2 tokens per chunk (CLS dropped)
    visual: torch.Tensor          # (T * 144 + T * 64, h): the LLM's visual input, context first


class VideoGLaMM(nn.Module):
    """The modules of a VideoGLaMM; attribute names follow ``VideoGLaMMForCausalLM.model``'s."""

    def __init__(self, preset: VideoGLaMMPreset) -> None:
        super().__init__()
        self.preset = preset
        #: the model string it was loaded from (what refusals name); the preset's name until a loader sets it
        self.source = f"VideoGLaMM preset {preset.name!r}"
        #: the eager attention's score buffers, kept from one forward to the next (:meth:`scratch`)
        self._scratch: Scratch | None = None
        h = preset.llm_hidden
        self.llm = Phi3ForCausalLM(phi3_config(preset))
        self.clip = CLIPVisionModel(clip_config(preset))
        self.internvideo = InternVideo2Tower(preset.internvideo)
        self.mm_projector = projector(preset.projector_type, preset.internvideo.embed_dim, h)
        self.image_mm_projector = projector(preset.projector_type, preset.clip_width, h)
        self.text_hidden_fcs = text_hidden_fcs(h, preset.out_dim)
        self.sam2 = Sam2Text(sam2_config(preset), preset.sam2_image_size)

    @property
    def dtype(self) -> torch.dtype:
        return self.llm.model.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.llm.model.embed_tokens.weight.device

    @torch.no_grad()
    def clip_hidden_states(self, context_images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every CLIP hidden state (L + 1 of (T, 577, width), CLS first) of the context images: what a
        CLIP-side pruning method traces per frame (``litelvlm.clip.traces`` layer convention)."""
        out = self.clip(context_images.to(self.device, self.clip.dtype), output_hidden_states=True)
        return tuple(out.hidden_states)

    @torch.no_grad()
    def clip_tokens(self, context_images: torch.Tensor) -> torch.Tensor:
        """(T, 3, 336, 336) -> (T, 576, width): ``hidden_states[-2][:, 1:]`` (clip_encoder.py L34-72)."""
        return self.clip_hidden_states(context_images)[-2][:, 1:].to(context_images.dtype)

    @torch.no_grad()
    def video_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, 3, 224, 224) -> (T // 4, 4 * 256, width) (``encode_videos``, arch.py L132-145)."""
        num_chunks = frames.shape[0] // CHUNK_SIZE
        chunk_batch = torch.stack(frames.chunk(num_chunks, dim=0), dim=0)
        return self.internvideo(chunk_batch.to(self.device))[:, 1:].to(frames.dtype)

    def project(self, video: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
        """``project(..., input_type="video")`` (arch.py L170-191) flattened: (T*144 + T*64, h)."""
        v = self.mm_projector(video.to(self.dtype))
        v = v.reshape(v.shape[0] * CHUNK_SIZE, -1, v.shape[-1])               # 'b (t l) d -> (b t) l d', t=4
        v = apply_adaptive_avg_pooling(v, shape=(8, 8))
        v = v.reshape(-1, CHUNK_SIZE * v.shape[1], v.shape[-1])                # '(b t) l d -> b (t l) d', t=4
        c = apply_adaptive_avg_pooling(self.image_mm_projector(clip.to(self.dtype)), shape=(12, 12))
        c = c.reshape(v.shape[0], -1, c.shape[-1])                             # '(b t) l d -> b (t l) d'
        merged = torch.cat([*c, *v], dim=0)
        return merged

    def visual_tokens(self, frames: torch.Tensor, context_images: torch.Tensor) -> VideoTokens:
        """Both towers and the projection of one video."""
        clip = self.clip_tokens(context_images)
        video = self.video_tokens(frames)
        return VideoTokens(clip, video, self.project(video, clip))

    def sequence_embeds(self, input_ids: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """(1, S + K - n_image, h): the ids' embeddings with the run of ``IMAGE_TOKEN_INDEX`` replaced by
        ``visual`` (K, h) (arch.py L281-371 without ``mm_use_im_start_end``)."""
        ids = input_ids[0]
        where = torch.nonzero(ids == IMAGE_TOKEN_INDEX).flatten()
        start, end = int(where[0]), int(where[-1])
        embed = self.llm.model.embed_tokens
        return torch.cat([embed(ids[:start]), visual.to(self.dtype), embed(ids[end + 1:])], dim=0)[None]

    def seg_rows(self, input_ids: torch.Tensor, num_visual: int, seg_token_id: int) -> torch.Tensor:
        """Rows of the embedded sequence whose hidden state predicts a ``[SEG]``: ``ids[1:] == seg`` with the
        visual length added after the image ids (inference_framewise L609-633)."""
        ids = input_ids[0]
        added = num_visual - int((ids == IMAGE_TOKEN_INDEX).sum())
        mask = torch.cat([torch.zeros(added, dtype=torch.bool, device=ids.device), ids[1:] == seg_token_id])
        return torch.nonzero(mask).flatten()

    @torch.no_grad()
    def final_hidden(self, embeds: torch.Tensor) -> torch.Tensor:
        """(1, S, h) final normed hidden states of the LLM on ``embeds`` (``outputs[0]``, phi3.py L72-83); the
        eager attention's scores in memory kept from one call to the next (:mod:`.scratch_attention`: the same
        values). Under ``--prefill captured`` (:mod:`litelvlm.llm.captured` installed on ``llm.model``) the
        decoder stack runs as one captured segment, positions 0..S-1 as the LLM's own forward numbers them
        (the same values)."""
        lm = self.llm.model
        if embeds.shape[0] == 1 and runner_of(lm) is not None:
            return lm.norm(run_layers(lm, embeds, torch.arange(embeds.shape[1], device=embeds.device)[None]))
        with self.scratch():
            return self.llm.model(inputs_embeds=embeds, use_cache=False).last_hidden_state

    def scratch(self) -> contextlib.AbstractContextManager:
        """Phi-3's eager attention with its scores in memory kept from one forward to the next
        (:mod:`.scratch_attention`: the same values); under a captured prefill, the captured layers' own."""
        if runner_of(self.llm.model) is not None:
            return contextlib.nullcontext()
        if self._scratch is None:
            self._scratch = Scratch()
        return scratch_eager(self.llm.model, self._scratch)

    def seg_embeddings(self, hidden: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(S, out_dim) ``text_hidden_fcs[0]`` of the rows predicting each ``[SEG]`` (L636-643)."""
        return self.text_hidden_fcs[0](hidden[0, rows])


__all__ = ["VideoGLaMM", "VideoTokens", "apply_adaptive_avg_pooling", "projector", "text_hidden_fcs"]
