"""VideoGLaMM's SAM 2 video branch (``--use_sam2_video_branch``) on transformers' ``Sam2VideoModel``.

``eval_referdavis_infer.py`` (mbzuai-oryx/VideoGLaMM @6b15b1e) L53 ``--use_sam2_video_branch`` (off by
default) builds SAM 2 with ``build_sam2_video_predictor`` (``model/VideoGLaMM.py`` L110-115, ``build_sam.py``
L43-78) and segments with ``inference_video_branch`` (``VideoGLaMM.py`` L770-880) instead of
``inference_framewise``:

* the ``[SEG]`` embeddings as in the frame-wise path, then ``init_state_from_tensor`` on the clip's SAM 2
  frames (the same ``sam_preprocess`` pixels, original size) and ``reset_state`` (L835-836);
* each ``[SEG]`` is one object (ids 0..S-1) given on frame 0 by ``add_new_text`` (L858-866;
  ``sam2_video_predictor.py`` L416-495): frame 0 is an initial conditioning frame, no point inputs, so
  ``_forward_sam_heads`` pads the empty point (label -1) and the pad point, and VideoGLaMM's prompt encoder
  appends the embedding (``prompt_encoder.py`` L167-189): sparse = [not-a-point, not-a-point, ``[SEG]``];
  ``multimask_output`` is on (``_use_multimask``, ``sam2_base.py`` L805-813: ``multimask_output_in_sam``, 0
  points within ``multimask_min_pt_num`` 0 .. ``multimask_max_pt_num`` 1, ``multimask_output_for_tracking``)
  on every frame, the best-IoU mask kept; the object score gates mask and pointer (``pred_obj_scores``,
  ``fixed_no_obj_ptr``);
* ``propagate_in_video`` (L870; ``sam2_video_predictor.py`` L675-827): the preflight memory-encodes frame 0's
  masks binarised (``binarize_mask_from_pts_for_mem_enc``, ``is_mask_from_pts=True``), no non-overlap
  constraint (``non_overlap_masks`` and ``non_overlap_masks_for_mem_enc`` False), then frames 1..T-1 forward
  only (``reverse=False``, from the earliest conditioning frame 0), each conditioned on frame 0 (temporal
  position 0) and the ``num_maskmem - 1`` = 6 previous frames' memories, and on up to 16 object pointers
  without temporal encoding (``add_tpos_enc_to_obj_ptrs: false``); non-conditioning masks enter the memory
  through the scaled sigmoid (20, -10); memory features are stored in bfloat16; ``fill_hole_area=8`` is a
  no-op there (``_run_single_frame_inference``: ``pass # TODO``);
* the output: each frame's low-resolution logits bilinearly resized to the original size
  (``_get_orig_video_res_output``) and ``> 0``, one mask per object (L871-876).

Here that is :func:`litelvlm.video.sam2_propagation.propagate_prompts` (transformers' session and
``propagate_in_video_iterator``, the ``[SEG]`` appended to the empty point's sparse embeddings by a forward
hook) on a ``Sam2VideoModel`` (:mod:`litelvlm.sam2.video`, SAM 2.0) holding the checkpoint's SAM 2 weights:
the image path of :class:`~.sam2_text.Sam2Text` and the tracking tensors (memory attention, memory encoder,
object pointers, temporal encodings) under the official names, mapped by
:func:`~litelvlm.video.sam2_propagation.tracking_key_to_hf`. The tiny preset's memory width (16) differs from
the 64 transformers fixes for the memory cross-attention's keys and values, so its two projections are rebuilt
at 16 (:func:`~litelvlm.video.sam2_propagation.set_memory_width`; the real preset has 64).
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
    :class:`~.pipeline.PreparedClip`, by SAM 2's memory (module docstring); S > 0."""
    net = video_model(model)
    if prepared.sam2_video is None:
        pixels = torch.cat([model.sam2.preprocess(f) for f in prepared.frames])
        prepared.sam2_video = (pixels, vision_features(net, pixels))
    pixels, features = prepared.sam2_video
    return propagate_prompts(net, pixels, prepared.original_size, prompts[:, None], append=True,
                             features=features).logits


def video_branch_logits(model, prepared, prompts: torch.Tensor) -> torch.Tensor:
    """``(T, S, H, W)`` float32 logits of S ``[SEG]`` embeddings ``(S, C)`` on every frame of a
    :class:`~.pipeline.PreparedClip`, by SAM 2's memory (module docstring)."""
    H, W = prepared.original_size
    if len(prompts) == 0:
        return torch.zeros(len(prepared.frames), 0, H, W)
    return F.interpolate(video_branch_low(model, prepared, prompts), (H, W), mode="bilinear",
                         align_corners=False)


__all__ = ["build_sam2_video", "sam2_video_config", "video_branch_logits", "video_branch_low", "video_model"]
