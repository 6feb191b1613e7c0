"""The paired CLIP's per-token scores on UniPixel's video tokens (this project's adaptation), so that the CLIP-side
methods that read scores alone (LiteLVLM, its ablations, ``random``: ``Method.scores_only``) select among a video's
merged tokens.

The image path (:mod:`litelvlm.unipixel.mapped`) maps one CLIP trace of the image, padded to a square, onto the merged
grid by overlap area. On a video each temporal patch of the Qwen2.5-VL video (2 of the LLM's frames, the last one
padded by repetition) is one merged grid: each of its frames is traced by CLIP as the image path traces the image (the
original frame, padded to a square), its similarity and context scores are mapped onto the grid by the same area
rule, and the patch's tokens take the mean of its frames' mapped scores (the tower merges both frames into each
token). The texts are the image path's (the protocol's video question, or the expression). The method's rule is then
the official one over the video's N merged tokens at once (LiteLVLM: its K // T lowest similarity + context fill).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import LiteLVLMError
from ..pruning import MappedInputs, SelectorInputs
from .mapped import CLIP_FEATURE_LAYER


@dataclass
class VideoMappedInputs(MappedInputs):
    """:class:`MappedInputs` of a video: one per LLM frame (``frames``), ``per_patch`` frames to a temporal patch."""

    frames: list = field(default_factory=list)
    per_patch: int = 2

    @property
    def num_patches(self) -> int:
        return len(self.frames) // self.per_patch * int(self.weights.shape[0])

    def _video(self, per_frame: list[torch.Tensor]) -> torch.Tensor:
        """(..., n) per frame -> (..., N): the mean over each temporal patch's frames, the patches in order."""
        stacked = torch.stack(per_frame)                                      # (frames, ..., n)
        grouped = stacked.reshape(-1, self.per_patch, *stacked.shape[1:]).mean(1)   # (patches, ..., n)
        return torch.cat(list(grouped), dim=-1)

    def similarity(self, layer: int = -2, kind: str = "dot") -> torch.Tensor:
        """(T, N) each frame's mapped patch-text similarity, averaged over each temporal patch's frames (or the
        override)."""
        if self.similarity_override is not None:
            return self.similarity_override.to(torch.float64)
        return self._video([f.similarity(layer=layer, kind=kind) for f in self.frames])

    def context(self, block: int = -1) -> torch.Tensor:
        """(N,) each frame's mapped context score, averaged over each temporal patch's frames."""
        if self.context_override is not None:
            return self.context_override.to(torch.float64)
        return self._video([f.context(block=block) for f in self.frames])


@torch.no_grad()
def video_mapped_inputs(pipe, prepared, clip_text: str) -> VideoMappedInputs:
    """The paired CLIP's traces of the LLM's frames and of the sentence's text, mapped onto the video's merged tokens
    (module docstring), with the pipeline's similarity source (``llm``: the relevance on the video's tokens)."""
    from ..data.geometry import transform_params
    from ..qwen.grid import TokenGrid, resample_matrix, source_edges
    from .video import video_question

    if pipe.context_source != "clip":
        raise LiteLVLMError("context='vit' reads one image's vision tower; on UniPixel's video input the context part "
                            "comes from the paired CLIP (context='clip')")
    clip, cache = pipe.clip, prepared.clip_cache
    t, h, w = (int(v) for v in prepared.grid_thw[0])
    originals = [prepared.frames[i] for i in prepared.sampled]
    originals += [originals[-1]] * (2 * t - len(originals))      # the protocol's padding with the last frame
    if "video_vision" not in cache:
        cache["video_vision"] = [clip.trace_image(clip.preprocess([f.convert("RGB")], pad_to_square=True))
                                 for f in originals]
        params = transform_params(clip.geometry, *prepared.image_size, pad_to_square=True)
        rows, cols = clip.grid
        cache["video_weights"] = resample_matrix(source_edges(params, rows, cols), TokenGrid.from_thw((1, h, w)),
                                                 prepared.image_size)
    sentence = prepared.sentences[0]
    said = video_question(sentence, len(prepared.frames)) if clip_text == "question" else sentence
    text = clip.encode_text([said], warn_truncation=False)
    frames = [MappedInputs(SelectorInputs(vision=v, text=text, feature_layer=CLIP_FEATURE_LAYER, seed=prepared.seed),
                           cache["video_weights"]) for v in cache["video_vision"]]
    similarity = None
    if pipe.similarity_source == "llm":
        from ..lvlm.relevance import prompt_relevance

        similarity = prompt_relevance(pipe, prepared)[None]
    return VideoMappedInputs(frames[0].clip, cache["video_weights"], similarity_override=similarity, frames=frames,
                             per_patch=len(originals) // t)


__all__ = ["VideoMappedInputs", "video_mapped_inputs"]
