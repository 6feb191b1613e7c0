"""Sa2VA's video path: the first five frames to the LLM, the ``[SEG]`` prompt on each of them, SAM 2's memory over the rest.

bytedance/Sa2VA @9832e1a, ``modeling_sa2va_qwen.py`` ``predict_forward`` (video branch, L107-146, L240-252) as
``sa2va_eval_ref_vos.py`` L188-193 calls it with every frame of the video:

* the LLM sees the first ``min(5, T)`` frames, each as one image of the prompt (L121-122), before the question
  (:func:`litelvlm.sa2va.protocol.video_question`), each resized as one image is;
* SAM 2 sees every frame: ``DirectResize`` to 1024, left uint8, normalised in float32 against the bfloat16
  constants (:func:`litelvlm.sa2va.sam2_head.sam_pixels` with ``video=True``), cast to bfloat16 (L112-137);
* ``language_embd_inference(init_state(frames), [seg] * min(5, T))`` (``sam2.py`` L332-358): the prompt is added
  on each of the first ``min(5, T)`` frames, each an initial conditioning frame (``add_language_embd``, no memory
  read); ``propagate_in_video`` then memory-encodes them (not binarised: ``binarize_mask_from_pts_for_mem_enc``
  keeps its False default; features stored in bfloat16, L3650-3653) and tracks every later frame forward, each
  attending to all conditioning frames and the 6 previous frames' memories and up to 16 object pointers without
  temporal encoding (SAM 2.0: no occlusion embedding);
* each frame's ``image_size / 4`` logits -> ``image_size`` squared -> the first frame's (H, W), ``sigmoid > 0.5``.

Here: transformers' ``Sam2VideoModel`` with the checkpoint's SAM 2 weights (UniPixel's and VideoGLaMM's engine,
:mod:`litelvlm.video.sam2_propagation`), the prompt appended to the empty point's sparse embeddings on each of the
conditioning frames. Pruning the video's LLM input is not offered (its visual tokens sit in one block per frame):
the video path runs at all N.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ..lvlm.random_weights import default_dtype
from ..video.sam2_propagation import appended_prompts, set_memory_width, tracking_key_to_hf, video_session
from .protocol import LLM_FRAMES


def sam2_video_config(size, image_size: int):
    """transformers ``Sam2VideoConfig`` of Sa2VA's SAM 2 (``sam2.py`` L86-126: SAM 2.0 settings)."""
    from transformers import Sam2VideoConfig

    from .config import sam2_config

    image = sam2_config(size, image_size)
    return Sam2VideoConfig(
        vision_config=image.vision_config.to_dict(), prompt_encoder_config=image.prompt_encoder_config.to_dict(),
        mask_decoder_config=image.mask_decoder_config.to_dict(), image_size=image_size,
        num_maskmem=size.num_maskmem, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
        enable_occlusion_spatial_embedding=False, enable_temporal_pos_encoding_for_object_pointers=False,
        multimask_output_in_sam=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        multimask_output_for_tracking=True, max_object_pointers_in_encoder=16, max_cond_frame_num=-1,
        memory_attention_hidden_size=size.d_model, memory_attention_num_layers=size.mem_layers,
        memory_attention_num_attention_heads=1, memory_attention_feed_forward_hidden_size=size.mem_ff,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2, memory_encoder_hidden_size=size.d_model,
        memory_encoder_output_channels=size.mem_dim, mask_downsampler_embed_dim=size.mask_downsampler_embed,
        memory_fuser_embed_dim=size.d_model, memory_fuser_intermediate_dim=4 * size.d_model)


def video_model(sam2):
    """The ``Sam2VideoModel`` of a loaded :class:`~.sam2_head.Sa2VASam2` (its image weights and tracking tensors),
    kept on ``sam2``."""
    from transformers import Sam2VideoModel

    from .checkpoint import from_g_weight

    net = getattr(sam2, "_video_model", None)
    if net is None:
        state = sam2.model.state_dict()
        ref = next(iter(state.values()))
        with default_dtype(ref.dtype), torch.device(ref.device):
            net = Sam2VideoModel(sam2_video_config(sam2.sam2_size, sam2.image_size))
            set_memory_width(net, sam2.sam2_size.mem_dim)
        state = dict(state)
        state.update({tracking_key_to_hf(from_g_weight(k)): v.to(ref.device, ref.dtype) for k, v in sam2.tracking.items()})
        net.load_state_dict(state, strict=True)
        net = net.eval().requires_grad_(False)
        object.__setattr__(sam2, "_video_model", net)
    return net


@contextlib.contextmanager
def sa2va_memory(net) -> Iterator[None]:
    """Within: ``net``'s memory encoding as Sa2VA's SAM 2 does it: transformers' ``_encode_new_memory`` with a mask from
    point inputs not binarised (the scaled sigmoid; Sa2VA's prompt frames carry no points); features in bfloat16."""
    import torch.nn.functional as F

    def encode(current_vision_feats, pred_masks_high_res, object_score_logits, is_mask_from_pts):
        batch, channels = current_vision_feats.size(1), net.hidden_dim
        height, width = net.backbone_feature_sizes[-1]
        mh, mw = (4 * v for v in net.prompt_encoder.mask_input_size)
        if pred_masks_high_res.shape[2:] != (mh, mw):
            pred_masks_high_res = F.interpolate(pred_masks_high_res.float(), size=(mh, mw), align_corners=False,
                                                mode="bilinear", antialias=True).to(pred_masks_high_res.dtype)
        pix_feat = current_vision_feats.permute(1, 2, 0).view(batch, channels, height, width)
        mask = torch.sigmoid(pred_masks_high_res) * net.config.sigmoid_scale_for_mem_enc \
            + net.config.sigmoid_bias_for_mem_enc
        features, pos_enc = net.memory_encoder(pix_feat, mask)
        features = features.to(torch.bfloat16).flatten(2).permute(2, 0, 1)
        return features, pos_enc.to(pred_masks_high_res.dtype).flatten(2).permute(2, 0, 1)

    net._encode_new_memory = encode
    try:
        yield
    finally:
        del net._encode_new_memory


@contextlib.contextmanager
def no_object_gate(net) -> Iterator[None]:
    """Within: ``net``'s masks are not blanked by the object score (Sa2VA comments out SAM 2's ``torch.where``,
    ``sam2.py`` L3299-3305), which still chooses the object pointer. Done with two forward hooks, no code edited: the
    mask decoder's object score is reported positive to ``_single_frame_forward`` (so its ``torch.where`` keeps the
    masks) and kept aside; the pointer projection's output is then mixed with ``no_object_pointer`` by the true score,
    as ``_single_frame_forward`` would (SAM 2.0 has no occlusion embedding, the only other reader of the score)."""
    scores: list[torch.Tensor] = []

    def decoder(module, args, output):
        masks, iou, tokens, score = output
        scores.append(score)
        return masks, iou, tokens, score.abs() + 1

    def pointer(module, args, output):
        lam = (scores.pop(0) > 0).to(output.dtype)
        return lam * output + (1 - lam) * net.no_object_pointer

    hooks = [net.mask_decoder.register_forward_hook(decoder), net.object_pointer_proj.register_forward_hook(pointer)]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def propagate(sam2, pixels: torch.Tensor, prompt: torch.Tensor, num_cond: int) -> torch.Tensor:
    """(T, 1, h, w) float32 low-resolution logits of one ``(1, C)`` prompt added on frames ``0..num_cond-1`` of
    ``(T, 3, S, S)`` SAM 2 pixels, the later frames tracked by the memory (module docstring)."""
    net = video_model(sam2)
    T, side = len(pixels), net.config.image_size // 4
    session = video_session(net, pixels.to(sam2.device, sam2.dtype), (sam2.image_size, sam2.image_size))
    point = {"point_coords": torch.zeros(1, 1, 1, 2, dtype=torch.float32),
             "point_labels": -torch.ones(1, 1, 1, dtype=torch.int32)}
    obj_idx = session.obj_id_to_idx(100)            # language_embd_inference's object id: obj_idx + 100
    logits = [None] * T
    with torch.inference_mode(), sa2va_memory(net), no_object_gate(net):
        for t in range(num_cond):
            session.add_point_inputs(obj_idx, t, point)
            session.obj_with_new_inputs.append(100)
            with appended_prompts(net, [prompt], append=True):
                net(session, frame_idx=t)
        for out in net.propagate_in_video_iterator(session, start_frame_idx=0):
            logits[out.frame_idx] = out.pred_masks.float().reshape(1, side, side)
    return torch.stack(logits).clone()


@dataclass
class VideoParts:
    """What a video adds to a prepared input: its frames' SAM 2 pixels and how many frames the LLM sees."""

    pixels: torch.Tensor                     # (T, 3, S, S)
    llm_frames: int
    cache: dict = field(default_factory=dict, repr=False, compare=False)


def video_parts(sam2, frames: list) -> VideoParts:
    """The SAM 2 pixels of every frame (video mode) and ``min(5, T)``."""
    pixels = torch.cat([sam2.preprocess(f, video=True) for f in frames])
    return VideoParts(pixels=pixels, llm_frames=min(LLM_FRAMES, len(frames)))


__all__ = ["VideoParts", "propagate", "sa2va_memory", "sam2_video_config", "video_model", "video_parts"]
