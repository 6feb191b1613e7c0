"""The paired external CLIP's scores mapped onto Qwen2.5-VL's merged tokens (this project's adaptation, for
the families built on Qwen2.5-VL: :mod:`litelvlm.qwen.pipeline`), with the options of where LiteLVLM's two
parts come from.

* ``context`` (:data:`CONTEXTS`): the paired CLIP's [CLS] context score mapped onto the merged grid (``clip``,
  the default), or the attention each merged token receives in the last block of Qwen2.5-VL's own vision tower
  (``vit``, VScan's Qwen score, :mod:`litelvlm.qwen_vision.vit_attention`);
* ``similarity`` (:data:`SIMILARITIES`): the paired CLIP's patch-text similarity mapped onto the merged grid
  (``clip``, the default), or the relevance of each merged token to the prompt's instruction in the LLM's
  input space (``llm``,
  :func:`litelvlm.llm.relevance.prompt_relevance`: the score OpenVINO's CDPruner port gives Qwen tokens).
  LiteLVLM's rule is unchanged: its lowest similarity is kept first (the reversal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.geometry import transform_params
from ..llm import relevance
from ..pruning import MappedInputs, SelectorInputs
from ..qwen_vision.grid import TokenGrid, resample_matrix, source_edges
from ..qwen_vision.vit_attention import received_attention
from ..switches import CLIP_CONTEXTS, CLIP_SIMILARITIES
from .pixels import clip_vision

#: where LiteLVLM's context and similarity parts come from (see the module docstring)
CONTEXTS, SIMILARITIES = CLIP_CONTEXTS, CLIP_SIMILARITIES
#: CLIP's layer whose patch tokens the similarity part reads (LLaVA's feature layer, which LiteLVLM's code
#: uses)
CLIP_FEATURE_LAYER = -2


@torch.no_grad()
def mapped_inputs(pipe, prepared, clip_text: str) -> MappedInputs:
    """The paired CLIP's traces of the image (padded to a square) and of the sentence's text (``clip_text``:
    the pipeline's ``clip_question`` of it, or the expression), with the map of CLIP's patches onto the merged
    grid, and the pipeline's context and similarity sources."""
    clip, cache = pipe.clip, prepared.clip_cache
    if "vision" not in cache:
        cache["vision"] = clip_vision(pipe, prepared)
        params = transform_params(clip.geometry, *prepared.image_size, pad_to_square=True)
        rows, cols = clip.grid
        cache["weights"] = resample_matrix(source_edges(params, rows, cols),
                                           TokenGrid.from_thw(prepared.grid_thw[0]), prepared.image_size)
    if pipe.context_source == "vit" and "vit_context" not in cache:
        v = pipe.vision(prepared)
        cache["vit_context"] = received_attention(v.visual, v.pixel_values, v.grid_thw)
    sentence = prepared.sentences[0]
    text = clip.encode_text([pipe.clip_question(sentence) if clip_text == "question" else sentence],
                            warn_truncation=False)
    inputs = SelectorInputs(vision=cache["vision"], text=text, feature_layer=CLIP_FEATURE_LAYER,
                            seed=prepared.seed)
    similarity = None
    if pipe.similarity_source == "llm":
        similarity = relevance.prompt_relevance(pipe, prepared)[None]
    return MappedInputs(inputs, cache["weights"], context_override=cache.get("vit_context"),
                        similarity_override=similarity)


@dataclass
class VideoMappedInputs(MappedInputs):
    """:class:`MappedInputs` of several frames: one per frame the LLM sees (``frames``, one grid each, all
    alike), ``per_patch`` frames to a temporal patch (2: a Qwen2.5-VL video; 1: frames given as images)."""

    frames: list = field(default_factory=list)
    per_patch: int = 2

    @property
    def num_patches(self) -> int:
        return len(self.frames) // self.per_patch * int(self.weights.shape[0])

    def _video(self, per_frame: list[torch.Tensor]) -> torch.Tensor:
        """(..., n) per frame -> (..., N): the mean over each temporal patch's frames, the patches in
        order."""
        stacked = torch.stack(per_frame)                                      # (frames, ..., n)
        grouped = stacked.reshape(-1, self.per_patch, *stacked.shape[1:]).mean(1)   # (patches, ..., n)
        return torch.cat(list(grouped), dim=-1)

    def similarity(self, layer: int = -2, kind: str = "dot") -> torch.Tensor:
        """(T, N) each frame's mapped patch-text similarity, averaged over each temporal patch's frames (or
        the override)."""
        if self.similarity_override is not None:
            return self.similarity_override.to(torch.float64)
        return self._video([f.similarity(layer=layer, kind=kind) for f in self.frames])

    def context(self, block: int = -1) -> torch.Tensor:
        """(N,) each frame's mapped context score, averaged over each temporal patch's frames."""
        if self.context_override is not None:
            return self.context_override.to(torch.float64)
        return self._video([f.context(block=block) for f in self.frames])


@torch.no_grad()
def frames_mapped_inputs(pipe, prepared, frames: list, grid_hw: tuple[int, int], said: str,
                         per_patch: int) -> VideoMappedInputs:
    """The paired CLIP's traces of ``frames`` (the originals of the frames the LLM sees, each padded to a
    square) and of the text ``said``, each frame mapped onto a merged grid of ``grid_hw`` (the same area rule
    as one image), with the pipeline's similarity source (``llm``: the relevance on the video's tokens). The
    traces are made once per video (``prepared.clip_cache``)."""
    clip, cache = pipe.clip, prepared.clip_cache
    if "video_vision" not in cache:
        cache["video_vision"] = [clip.trace_image(clip.preprocess([f.convert("RGB")], pad_to_square=True))
                                 for f in frames]
        params = transform_params(clip.geometry, *prepared.image_size, pad_to_square=True)
        rows, cols = clip.grid
        cache["video_weights"] = resample_matrix(source_edges(params, rows, cols),
                                                 TokenGrid.from_thw((1, *grid_hw)), prepared.image_size)
    text = clip.encode_text([said], warn_truncation=False)
    per_frame = [MappedInputs(SelectorInputs(vision=v, text=text, feature_layer=CLIP_FEATURE_LAYER,
                                             seed=prepared.seed), cache["video_weights"])
                 for v in cache["video_vision"]]
    similarity = None
    if pipe.similarity_source == "llm":
        similarity = relevance.prompt_relevance(pipe, prepared)[None]
    return VideoMappedInputs(per_frame[0].clip, cache["video_weights"], similarity_override=similarity,
                             frames=per_frame, per_patch=per_patch)


__all__ = ["CLIP_FEATURE_LAYER", "CONTEXTS", "SIMILARITIES", "VideoMappedInputs", "frames_mapped_inputs",
           "mapped_inputs"]
