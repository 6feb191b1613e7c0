"""VideoGLaMM's referring video segmentation of one clip, frame-wise SAM 2, with a teacher-forced answer.

``segment_clip`` runs ``inference_framewise`` (mbzuai-oryx/VideoGLaMM @6b15b1e,
``VideoGLaMM/model/VideoGLaMM.py`` L598-768) on the inputs ``eval_referdavis_infer.py`` builds
(:mod:`.prompt`), with one difference: the answer is teacher-forced (``"It is [SEG]."``, VideoGLaMM's
referring answer) instead of generated (``generate`` with ``max_new_tokens=512``, L616-626), so that a
random-weight model yields a ``[SEG]`` and the masks are defined. The row predicting ``[SEG]`` in a
teacher-forced prefill is the row ``generate`` reads when it emits that ``[SEG]`` as the same token sequence
(causal attention); ``answer=None`` generates the answer greedily instead (:func:`greedy_answer`). Each of the
clip's frames gets SAM 2's mask of the ``[SEG]`` embedding (:mod:`.sam2_text`); ``sam2_video_branch=True``
runs the memory propagation path (``inference_video_branch``, the official ``--use_sam2_video_branch``)
instead (:mod:`.sam2_video`).

:class:`PreparedClip` keeps the per-frame CLIP patch tokens ``(16, 576, 1024)`` before projection and pooling
-- the stream a per-frame visual-token pruning method selects from -- next to the LLM's 3328 visual tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..llm.limits import check_llm_input
from .config import IMAGE_TOKEN_INDEX
from .model import VideoGLaMM, VideoTokens
from .prompt import ANSWER, clip_pixels, input_ids, internvideo_pixels, sample_frames
from .sam2_video import video_branch_logits


@dataclass
class PreparedClip:
    """One clip's per-video work: the LLM frames, both towers' tokens, SAM 2's features of every frame."""

    frames: list[np.ndarray]            # all frames of the clip, (H, W, 3) uint8
    llm_frames: list[int]               # the 16 frame indices the LLM sees
    tokens: VideoTokens                 # tokens.clip: (16, 576, w) per-frame CLIP tokens (pruning's input)
    sam_features: list[list[torch.Tensor]]
    sam2_video: tuple | None = None     # the video branch's (pixels, per-frame features), made on first use

    @property
    def original_size(self) -> tuple[int, int]:
        return tuple(self.frames[0].shape[:2])


@dataclass
class ClipMasks:
    """What :func:`segment_clip` returns for one expression."""

    logits: torch.Tensor                # (T, S, H, W) float32 mask logits, one per frame and [SEG]
    seg_embeddings: torch.Tensor        # (S, out_dim)
    input_ids: torch.Tensor             # (1, L) with IMAGE_TOKEN_INDEX ids

    @property
    def masks(self) -> torch.Tensor:
        """(T, S, H, W) bool: ``logits > 0`` (L763)."""
        return self.logits > 0


@torch.no_grad()
def prepare_clip(model: VideoGLaMM, frames: list[np.ndarray]) -> PreparedClip:
    """Sample the LLM's frames, run both towers and SAM 2's image encoder on every frame."""
    if not frames:
        raise ValueError("a clip needs at least one frame")
    idx = sample_frames(len(frames))
    chosen = [frames[i] for i in idx]
    tokens = model.visual_tokens(internvideo_pixels(chosen).to(model.dtype),
                                 clip_pixels(chosen).to(model.dtype))
    features = [model.sam2.encode(model.sam2.preprocess(f)) for f in frames]
    return PreparedClip(list(frames), idx, tokens, features)


@torch.no_grad()
def greedy_answer(model: VideoGLaMM, ids: torch.Tensor, visual: torch.Tensor, eos_ids: tuple[int, ...],
                  max_new_tokens: int = 512) -> torch.Tensor:
    """(1, L + n) ids with the greedy answer appended, as ``generate(num_beams=1, use_cache=False)`` makes it
    (L616-626): every step recomputes the whole sequence; stops after an id of ``eos_ids`` or
    ``max_new_tokens``."""
    embed = model.llm.model.embed_tokens
    seq = model.sequence_embeds(ids, visual)
    out = ids
    for _ in range(max_new_tokens):
        logits = model.llm.lm_head(model.final_hidden(seq)[:, -1])
        nxt = torch.argmax(logits, dim=-1)
        out = torch.cat([out, nxt[:, None]], dim=1)
        if int(nxt) in eos_ids:
            break
        seq = torch.cat([seq, embed(nxt)[:, None]], dim=1)
    return out


@torch.no_grad()
def segment_clip(model: VideoGLaMM, tokenizer, prepared: PreparedClip, expression: str,
                 answer: str | None = ANSWER, visual: torch.Tensor | None = None,
                 max_new_tokens: int = 512, sam2_video_branch: bool = False) -> ClipMasks:
    """Masks of ``expression`` on every frame; ``visual`` replaces the LLM's visual tokens (a pruned set).
    ``answer`` None generates it greedily (the official inference); no ``[SEG]`` then gives no mask (S = 0).
    ``sam2_video_branch`` (the official ``--use_sam2_video_branch``): SAM 2's memory propagation from frame 0
    (:mod:`.sam2_video`) instead of frame-wise decoding. A prompt past the LLM's positions or memory is
    refused before the LLM runs (:func:`litelvlm.llm.limits.check_llm_input`)."""
    visual = prepared.tokens.visual if visual is None else visual
    ids = input_ids(tokenizer, expression, answer).to(model.device)
    seq_len = ids.shape[1] - int((ids == IMAGE_TOKEN_INDEX).sum()) + int(visual.shape[0])
    check_llm_input(model.llm.model, model.source, seq_len, num_visual=int(visual.shape[0]),
                    extra_rows=0 if answer is not None else max_new_tokens)  # greedy_answer recomputes it all
    if answer is None:
        ids = greedy_answer(model, ids, visual, (tokenizer.eos_token_id,), max_new_tokens)
    hidden = model.final_hidden(model.sequence_embeds(ids, visual))
    return clip_masks(model, tokenizer, prepared, ids, hidden, int(visual.shape[0]), sam2_video_branch)


def clip_masks(model: VideoGLaMM, tokenizer, prepared: PreparedClip, ids: torch.Tensor, hidden: torch.Tensor,
               num_visual: int, sam2_video_branch: bool = False) -> ClipMasks:
    """:func:`segment_clip`'s masks from one prompt's ids and final hidden states ((1, S, h); a padded batch's
    row may run longer: its real rows come first)."""
    seg_id = tokenizer.convert_tokens_to_ids("[SEG]")
    rows = model.seg_rows(ids, num_visual, seg_id)
    prompts = model.seg_embeddings(hidden, rows)
    if sam2_video_branch:
        return ClipMasks(video_branch_logits(model, prepared, prompts), prompts, ids)
    logits = torch.stack(
        [model.sam2.decode(f, prompts, prepared.original_size) for f in prepared.sam_features])
    return ClipMasks(logits, prompts, ids)


__all__ = ["ClipMasks", "PreparedClip", "clip_masks", "greedy_answer", "prepare_clip", "segment_clip"]
