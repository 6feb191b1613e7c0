"""UniPixel's SAM 2.1 video path on transformers' ``Sam2VideoModel``: the seg head's prompt on frame 0, SAM
2's memory carrying it to every later frame.

UniPixel (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py`` L361-366 with ``sam2_batch_mode``
False): ``init_state`` over every frame of the video (the SAM 2 transform of ``utils/transforms.py``, original
size), ``add_new_hidden_state(state, 0, 0, seg_token)`` (``sam2/sam2_video_predictor.py`` L162-234: frame 0 an
initial conditioning frame, no point inputs, the prompt encoder appending the two hidden-state tokens to the
empty point and its padding point, ``prompt_encoder.py`` L167-179), then ``propagate_in_video`` (L552-687)
forward from frame 0, and ``> 0`` of each frame's mask at the original size. SAM 2 is built from
``sam2.1_hiera_b+.yaml`` by ``compose`` + ``instantiate`` (``qwen2_5_vl.py`` L64-70) with only ``image_size``
and the predictor class overridden, so the model's own defaults hold where the yaml is silent
(``sam2_base.py`` L23-90):

* the yaml: ``num_maskmem`` 7, sigmoid scale 20 / bias -10 for the memory encoder, ``no_obj_embed_spatial``,
  object pointers with projected signed temporal encodings (``add_tpos_enc_to_obj_ptrs``,
  ``proj_tpos_enc_in_obj_ptrs``, ``use_signed_tpos_enc_to_obj_ptrs``), 16 of them at most, multimask outputs
  on every frame (``multimask_output_for_tracking``, 0..1 points), ``pred_obj_scores`` with
  ``fixed_no_obj_ptr``;
* the defaults: ``binarize_mask_from_pts_for_mem_enc`` False -- frame 0's mask enters the memory through the
  scaled sigmoid, NOT binarised (SAM 2's ``build_sam2_video_predictor`` would set it True; UniPixel does not
  use it) --, no non-overlap constraint, ``fill_hole_area`` 0, every conditioning frame attended
  (``max_cond_frames_in_attn`` -1).

Here that is :func:`litelvlm.video.sam2_propagation.propagate_prompts` (transformers' session and
``propagate_in_video_iterator``, the prompt appended to the empty point's sparse embeddings by a forward hook)
on a ``Sam2VideoModel`` holding the checkpoint's SAM 2 weights (the image path's and the tracking tensors,
mapped by
:func:`~litelvlm.video.sam2_propagation.tracking_key_to_hf`). transformers binarises a mask from point inputs
for the memory encoder, and the engine gives frame 0 an empty point, and stores memory features in bfloat16:
:func:`unipixel_memory` encodes the memory as UniPixel does (the scaled sigmoid, the features' own dtype). The
tiny preset's memory width (16) differs from the 64 transformers fixes for the memory cross-attention's keys
and values, so those two projections are rebuilt at its width (the b+ preset has 64).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial

import torch

from ..sam2.video import build_video_model, cached_video_model, memory_encoder
from ..sam2.video import sam2_video_config as _video_config
from ..video.sam2_propagation import propagate_prompts, vision_features
from .config import Sam2Size

#: UniPixel's SAM 2.1 video config (the module docstring's settings)
sam2_video_config = partial(_video_config, version="2.1")


def build_sam2_video(size: Sam2Size, image_size: int, image_state: dict, tracking: dict[str, torch.Tensor]):
    """A ``Sam2VideoModel`` (eval) of ``image_state`` (``Sam2Model``'s names) and ``tracking`` (UniPixel's
    names)."""
    return build_video_model(size, image_size, image_state, tracking, version="2.1")


@contextlib.contextmanager
def unipixel_memory(net) -> Iterator[None]:
    """Within: ``net``'s memory encoding as UniPixel's SAM 2 does it; restored on exit: a mask from point
    inputs not binarised (``sam2_video_predictor.py`` L1246-1255) and the features stored in the frame
    features' dtype (UniPixel's ``_run_memory_encoder``, L906) --
    :func:`litelvlm.sam2.video.memory_encoder`."""
    with memory_encoder(net, store_dtype=None):
        yield


def video_model(sam2):
    """The ``Sam2VideoModel`` of a loaded :class:`~litelvlm.sam2.prompt.Sam2Prompt` (built from its image
    weights and the tracking tensors the checkpoint carries, ``sam2.tracking``; kept on ``sam2`` and rebuilt
    when ``sam2`` moved to another device or dtype; weights edited in place later are not seen: delete
    ``sam2._video_model``)."""
    def build():
        tracking = getattr(sam2, "tracking", None)
        if tracking is None:
            raise ValueError("this SAM 2 carries no tracking tensors: load it with load_unipixel")
        return build_sam2_video(sam2.sam2_size, sam2.image_size, sam2.model.state_dict(), tracking)

    return cached_video_model(sam2, build, sam2.model.no_memory_embedding)


def propagated_logits(sam2, frames: list, prompt: torch.Tensor, cache: dict) -> torch.Tensor:
    """``(T, 1, h, w)`` float32 low-resolution logits of one ``(tokens, C)`` prompt given on frame 0 of
    ``frames`` (PIL images), carried by SAM 2's memory; ``cache`` keeps the frames' pixels and features
    between calls."""
    net = video_model(sam2)
    if "pixels" not in cache:
        cache["pixels"] = torch.cat([sam2.preprocess(f) for f in frames])
        cache["features"] = vision_features(net, cache["pixels"])
    size = (frames[0].height, frames[0].width)
    with unipixel_memory(net):
        out = propagate_prompts(net, cache["pixels"], size, prompt[None], append=True,
                                features=cache["features"])
    return out.logits


__all__ = ["build_sam2_video", "propagated_logits", "sam2_video_config", "unipixel_memory", "video_model"]
