"""The paired CLIP's per-token scores on UniPixel's video tokens (this project's adaptation), so that the
CLIP-side methods that read scores alone (LiteLVLM, its ablations, ``random``: ``Method.scores_only``) select
among a video's merged tokens.

The image path (:mod:`litelvlm.qwen.mapped`) maps one CLIP trace of the image, padded to a square, onto the
merged grid by overlap area. On a video each temporal patch of the Qwen2.5-VL video (2 of the LLM's frames,
the last one padded by repetition) is one merged grid: each of its frames is traced by CLIP as the image path
traces the image (the original frame, padded to a square), its similarity and context scores are mapped onto
the grid by the same area rule, and the patch's tokens take the mean of its frames' mapped scores (the tower
merges both frames into each token). The texts are the image path's (the protocol's video question, or the
expression). The method's rule is then the official one over the video's N merged tokens at once (LiteLVLM:
its K // T lowest similarity + context fill).
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..qwen.mapped import VideoMappedInputs, frames_mapped_inputs
from .video import video_question


@torch.no_grad()
def video_mapped_inputs(pipe, prepared, clip_text: str) -> VideoMappedInputs:
    """The paired CLIP's traces of the LLM's frames and of the sentence's text, mapped onto the video's merged
    tokens (module docstring), with the pipeline's similarity source (``llm``: the relevance on the video's
    tokens)."""
    if pipe.context_source != "clip":
        raise LiteLVLMError("context='vit' reads one image's vision tower; on UniPixel's video input the "
                            "context part comes from the paired CLIP (context='clip')")
    t, h, w = (int(v) for v in prepared.grid_thw[0])
    originals = [prepared.frames[i] for i in prepared.sampled]
    originals += [originals[-1]] * (2 * t - len(originals))      # the protocol's padding with the last frame
    sentence = prepared.sentences[0]
    said = video_question(sentence, len(prepared.frames)) if clip_text == "question" else sentence
    return frames_mapped_inputs(pipe, prepared, originals, (h, w), said, per_patch=len(originals) // t)


__all__ = ["VideoMappedInputs", "video_mapped_inputs"]
