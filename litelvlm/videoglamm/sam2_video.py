"""VideoGLaMM's SAM 2 video branch (``--use_sam2_video_branch``) on transformers' ``Sam2VideoModel``.

Official source: mbzuai-oryx/VideoGLaMM @ 6b15b1e, ``model/VideoGLaMM.py`` ``inference_video_branch``.

Details: docs/videoglamm.md (``litelvlm.videoglamm.sam2_video``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..sam2.video import build_video_model, cached_video_model
from ..sam2.video import sam2_video_config as _video_config
from ..video.sam2_propagation import propagate_prompts, vision_features
from .config import VideoGLaMMPreset


def sam2_video_config(p: VideoGLaMMPreset):
    """transformers ``Sam2VideoConfig`` of ``sam2_hiera_l.yaml`` with the video predictor's settings
    (docstring): SAM 2.0 with ``build_sam2``'s post-processing
    (:func:`litelvlm.sam2.video.sam2_video_config`)."""
    return _video_config(p.sam2, p.sam2_image_size, version="2.0", stability=True)


def build_sam2_video(p: VideoGLaMMPreset, image_state: dict, tracking: dict[str, torch.Tensor]):
    """A ``Sam2VideoModel`` (eval) of ``image_state`` (``Sam2Model``'s names) and official-name
    ``tracking``."""
    return build_video_model(p.sam2, p.sam2_image_size, image_state, tracking, version="2.0", stability=True)


def video_model(model):
    """The ``Sam2VideoModel`` of a :class:`~.model.VideoGLaMM` (built once from ``model.sam2`` and the
    tracking tensors the checkpoint carries, ``model.sam2_tracking``; rebuilt when the model moved to another
    device or dtype)."""
    def build():
        tracking = getattr(model, "sam2_tracking", None)
        if tracking is None:
            raise ValueError(
                "this VideoGLaMM carries no SAM 2 tracking tensors: load it with load_videoglamm")
        return build_sam2_video(model.preset, model.sam2.model.state_dict(), tracking)

    return cached_video_model(model, build, model.sam2.model.no_memory_embedding, attr="_sam2_video")


def video_branch_low(model, prepared, prompts: torch.Tensor) -> torch.Tensor:
    """``(T, S, h, w)`` low-resolution logits of S ``[SEG]`` embeddings ``(S, C)`` on every frame of a
    :class:`~.pipeline.PreparedClip`, by SAM 2's memory (docs/videoglamm.md); S > 0."""
    net = video_model(model)
    if prepared.sam2_video is None:
        pixels = torch.cat([model.sam2.preprocess(f) for f in prepared.frames])
        prepared.sam2_video = (pixels, vision_features(net, pixels))
    pixels, features = prepared.sam2_video
    return propagate_prompts(net, pixels, prepared.original_size, prompts[:, None], append=True,
                             features=features).logits


def video_branch_logits(model, prepared, prompts: torch.Tensor) -> torch.Tensor:
    """``(T, S, H, W)`` float32 logits of S ``[SEG]`` embeddings ``(S, C)`` on every frame of a
    :class:`~.pipeline.PreparedClip`, by SAM 2's memory (docs/videoglamm.md)."""
    H, W = prepared.original_size
    if len(prompts) == 0:
        return torch.zeros(len(prepared.frames), 0, H, W)
    return F.interpolate(video_branch_low(model, prepared, prompts), (H, W), mode="bilinear",
                         align_corners=False)


__all__ = ["build_sam2_video", "sam2_video_config", "video_branch_logits", "video_branch_low", "video_model"]
