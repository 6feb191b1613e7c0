"""UniPixel's SAM 2.1 video path on transformers' ``Sam2VideoModel``: the seg head's prompt on frame 0, SAM 2's memory
carrying it to every later frame.

UniPixel (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/qwen2_5_vl.py`` L361-366 with ``sam2_batch_mode``
False): ``init_state`` over every frame of the video (the SAM 2 transform of ``utils/transforms.py``, original
size), ``add_new_hidden_state(state, 0, 0, seg_token)`` (``sam2/sam2_video_predictor.py`` L162-234: frame 0 an
initial conditioning frame, no point inputs, the prompt encoder appending the two hidden-state tokens to the empty
point and its padding point, ``prompt_encoder.py`` L167-179), then ``propagate_in_video`` (L552-687) forward from
frame 0, and ``> 0`` of each frame's mask at the original size. SAM 2 is built from ``sam2.1_hiera_b+.yaml`` by
``compose`` + ``instantiate`` (``qwen2_5_vl.py`` L64-70) with only ``image_size`` and the predictor class
overridden, so the model's own defaults hold where the yaml is silent (``sam2_base.py`` L23-90):

* the yaml: ``num_maskmem`` 7, sigmoid scale 20 / bias -10 for the memory encoder, ``no_obj_embed_spatial``,
  object pointers with projected signed temporal encodings (``add_tpos_enc_to_obj_ptrs``,
  ``proj_tpos_enc_in_obj_ptrs``, ``use_signed_tpos_enc_to_obj_ptrs``), 16 of them at most, multimask outputs on
  every frame (``multimask_output_for_tracking``, 0..1 points), ``pred_obj_scores`` with ``fixed_no_obj_ptr``;
* the defaults: ``binarize_mask_from_pts_for_mem_enc`` False -- frame 0's mask enters the memory through the
  scaled sigmoid, NOT binarised (SAM 2's ``build_sam2_video_predictor`` would set it True; UniPixel does not use
  it) --, no non-overlap constraint, ``fill_hole_area`` 0, every conditioning frame attended
  (``max_cond_frames_in_attn`` -1).

Here that is :func:`litelvlm.video.sam2_propagation.propagate_prompts` (transformers' session and
``propagate_in_video_iterator``, the prompt appended to the empty point's sparse embeddings by a forward hook) on a
``Sam2VideoModel`` holding the checkpoint's SAM 2 weights (the image path's and the tracking tensors, mapped by
:func:`~litelvlm.video.sam2_propagation.tracking_key_to_hf`). transformers binarises a mask from point inputs for
the memory encoder, and the engine gives frame 0 an empty point, and stores memory features in bfloat16:
:func:`unipixel_memory` encodes the memory as UniPixel does (the scaled sigmoid, the features' own dtype). The tiny preset's memory width (16) differs from the 64 transformers fixes for the memory
cross-attention's keys and values, so those two projections are rebuilt at its width (the b+ preset has 64).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..lvlm.random_weights import default_dtype
from ..video.sam2_propagation import propagate_prompts, set_memory_width, tracking_key_to_hf, vision_features
from .config import Sam2Size, sam2_config


def sam2_video_config(size: Sam2Size, image_size: int):
    """transformers ``Sam2VideoConfig`` of UniPixel's SAM 2.1 (the module docstring's settings)."""
    from transformers import Sam2VideoConfig

    image = sam2_config(size, image_size)
    return Sam2VideoConfig(
        vision_config=image.vision_config.to_dict(), prompt_encoder_config=image.prompt_encoder_config.to_dict(),
        mask_decoder_config=image.mask_decoder_config.to_dict(), image_size=image_size,
        num_maskmem=size.num_maskmem, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
        enable_occlusion_spatial_embedding=True, enable_temporal_pos_encoding_for_object_pointers=True,
        multimask_output_in_sam=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        multimask_output_for_tracking=True, max_object_pointers_in_encoder=16, max_cond_frame_num=-1,
        memory_attention_hidden_size=size.d_model, memory_attention_num_layers=size.mem_layers,
        memory_attention_num_attention_heads=1, memory_attention_feed_forward_hidden_size=size.mem_ff,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2, memory_encoder_hidden_size=size.d_model,
        memory_encoder_output_channels=size.mem_dim, mask_downsampler_embed_dim=size.mask_downsampler_embed,
        memory_fuser_embed_dim=size.d_model, memory_fuser_intermediate_dim=4 * size.d_model)


def build_sam2_video(size: Sam2Size, image_size: int, image_state: dict, tracking: dict[str, torch.Tensor]):
    """A ``Sam2VideoModel`` (eval) of ``image_state`` (``Sam2Model``'s names) and ``tracking`` (UniPixel's names)."""
    from transformers import Sam2VideoModel

    ref = next(iter(image_state.values()))
    with default_dtype(ref.dtype), torch.device(ref.device):
        net = Sam2VideoModel(sam2_video_config(size, image_size))
        set_memory_width(net, size.mem_dim)
    state = dict(image_state)
    state.update({tracking_key_to_hf(k): v.to(ref.device, ref.dtype) for k, v in tracking.items()})
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


@contextlib.contextmanager
def unipixel_memory(net) -> Iterator[None]:
    """Within: ``net``'s memory encoding as UniPixel's SAM 2 does it; restored on exit. transformers'
    ``Sam2VideoModel._encode_new_memory`` with two statements changed: a mask from point inputs is not binarised
    (``binarize_mask_from_pts_for_mem_enc`` False: the scaled sigmoid of the logits, ``sam2_video_predictor.py``
    L1246-1255), and the memory features are stored in the frame features' dtype, not bfloat16 (UniPixel's
    ``_run_memory_encoder``, L906)."""
    import torch.nn.functional as F

    def encode(current_vision_feats, pred_masks_high_res, object_score_logits, is_mask_from_pts):
        batch, channels = current_vision_feats.size(1), net.hidden_dim
        height, width = net.backbone_feature_sizes[-1]
        mh, mw = (4 * v for v in net.prompt_encoder.mask_input_size)
        if pred_masks_high_res.shape[2:] != (mh, mw):
            pred_masks_high_res = F.interpolate(pred_masks_high_res.float(), size=(mh, mw), align_corners=False,
                                                mode="bilinear", antialias=True).to(pred_masks_high_res.dtype)
        pix_feat = current_vision_feats.permute(1, 2, 0).view(batch, channels, height, width)
        mask_for_mem = torch.sigmoid(pred_masks_high_res)        # never binarised (UniPixel's default)
        mask_for_mem = mask_for_mem * net.config.sigmoid_scale_for_mem_enc + net.config.sigmoid_bias_for_mem_enc
        features, pos_enc = net.memory_encoder(pix_feat, mask_for_mem)
        if net.occlusion_spatial_embedding_parameter is not None:
            appearing = (object_score_logits > 0).float()
            features += (1 - appearing[..., None]) * net.occlusion_spatial_embedding_parameter[..., None, None].expand(
                *features.shape)
        features = features.to(current_vision_feats.dtype).flatten(2).permute(2, 0, 1)   # not bfloat16
        return features, pos_enc.to(pred_masks_high_res.dtype).flatten(2).permute(2, 0, 1)

    net._encode_new_memory = encode
    try:
        yield
    finally:
        del net._encode_new_memory


def video_model(sam2):
    """The ``Sam2VideoModel`` of a loaded :class:`~.sam2_prompt.Sam2Prompt` (built from its image weights and the
    tracking tensors the checkpoint carries, ``sam2.tracking``; kept on ``sam2`` and rebuilt when ``sam2`` moved to
    another device or dtype; weights edited in place later are not seen: delete ``sam2._video_model``)."""
    net = getattr(sam2, "_video_model", None)
    if net is not None and (net.no_memory_embedding.dtype, net.no_memory_embedding.device) != (sam2.dtype, sam2.device):
        net = None
    if net is None:
        tracking = getattr(sam2, "tracking", None)
        if tracking is None:
            raise ValueError("this SAM 2 carries no tracking tensors: load it with load_unipixel")
        net = build_sam2_video(sam2.sam2_size, sam2.image_size, sam2.model.state_dict(), tracking)
        object.__setattr__(sam2, "_video_model", net)   # not a submodule: the state dict stays the image path's
    return net


def propagated_logits(sam2, frames: list, prompt: torch.Tensor, cache: dict) -> torch.Tensor:
    """``(T, 1, h, w)`` float32 low-resolution logits of one ``(tokens, C)`` prompt given on frame 0 of ``frames``
    (PIL images), carried by SAM 2's memory; ``cache`` keeps the frames' pixels and features between calls."""
    net = video_model(sam2)
    if "pixels" not in cache:
        cache["pixels"] = torch.cat([sam2.preprocess(f) for f in frames])
        cache["features"] = vision_features(net, cache["pixels"])
    size = (frames[0].height, frames[0].width)
    with unipixel_memory(net):
        out = propagate_prompts(net, cache["pixels"], size, prompt[None], append=True, features=cache["features"])
    return out.logits


__all__ = ["build_sam2_video", "propagated_logits", "sam2_video_config", "unipixel_memory", "video_model"]
