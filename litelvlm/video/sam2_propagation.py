"""SAM 2 memory propagation of a frame-0 prompt given as sparse prompt embeddings, on transformers'
``Sam2VideoModel`` (as VideoGLaMM's and UniPixel's SAM 2 code hands its mask decoder an embedding).

Details: docs/video.md (``litelvlm.video.sam2_propagation``).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import Sam2VideoInferenceSession

#: official SAM 2 tracking tensor names (``SAM2Base``) -> transformers' ``Sam2VideoModel`` names
TRACKING_KEY_PAIRS = (
    (r"maskmem_tpos_enc", "memory_temporal_positional_encoding"),
    (r"no_mem_pos_enc", "no_memory_positional_encoding"),
    (r"no_obj_ptr", "no_object_pointer"),
    (r"no_obj_embed_spatial", "occlusion_spatial_embedding_parameter"),
    (r"mask_downsample\.", "mask_downsample."),
    (r"obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),
    (r"obj_ptr_proj\.layers\.0\.", "object_pointer_proj.proj_in."),
    (r"obj_ptr_proj\.layers\.1\.", "object_pointer_proj.layers.0."),
    (r"obj_ptr_proj\.layers\.2\.", "object_pointer_proj.proj_out."),
    (r"memory_attention\.layers\.(\d+)\.(self_attn|cross_attn_image)\.out_proj\.",
     r"memory_attention.layers.\1.\2.o_proj."),
    (r"memory_attention\.layers\.(\d+)\.norm(\d)\.", r"memory_attention.layers.\1.layer_norm\2."),
    (r"memory_attention\.layers\.", "memory_attention.layers."),
    (r"memory_attention\.norm\.", "memory_attention.layer_norm."),
    (r"memory_encoder\.mask_downsampler\.encoder\.(\d+)\.", None),   # see _downsampler_key
    (r"memory_encoder\.pix_feat_proj\.", "memory_encoder.feature_projection."),
    (r"memory_encoder\.fuser\.layers\.(\d+)\.(weight|gamma)$", r"memory_encoder.memory_fuser.layers.\1.scale")
    , (r"memory_encoder\.fuser\.layers\.(\d+)\.dwconv\.",
     r"memory_encoder.memory_fuser.layers.\1.depthwise_conv."),
    (r"memory_encoder\.fuser\.layers\.(\d+)\.norm\.", r"memory_encoder.memory_fuser.layers.\1.layer_norm."),
    (r"memory_encoder\.fuser\.layers\.(\d+)\.pwconv(\d)\.",
     r"memory_encoder.memory_fuser.layers.\1.pointwise_conv\2."),
    (r"memory_encoder\.out_proj\.", "memory_encoder.projection."),
)


def _downsampler_key(index: int, num_layers: int) -> str:
    """``mask_downsampler.encoder.{i}``: conv 3k, LayerNorm2d 3k + 1 (GELU 3k + 2), the final 1x1 conv
    last."""
    if index == 3 * num_layers:
        return "memory_encoder.mask_downsampler.final_conv."
    kind = {0: "conv", 1: "layer_norm"}[index % 3]
    return f"memory_encoder.mask_downsampler.layers.{index // 3}.{kind}."


def tracking_key_to_hf(key: str, downsampler_layers: int = 4) -> str:
    """transformers' name of an official SAM 2 tracking tensor (``downsampler_layers``: log4 of the total
    stride)."""
    for pattern, repl in TRACKING_KEY_PAIRS:
        m = re.match(pattern, key)
        if m is None:
            continue
        if repl is None:
            return _downsampler_key(int(m.group(1)), downsampler_layers) + key[m.end():]
        return m.expand(repl) + key[m.end():] if "\\" in repl else repl + key[m.end():]
    raise KeyError(f"not a SAM 2 tracking tensor: {key!r}")


def set_memory_width(model, mem_dim: int) -> None:
    """Rebuild the memory cross-attention's key/value projections of ``model`` for a memory of ``mem_dim``
    channels: transformers fixes them at SAM 2's 64 (a no-op there); small test sizes have other widths."""
    for layer in model.memory_attention.layers:
        att = layer.cross_attn_image
        if att.kv_in_dim != mem_dim:
            w = att.q_proj.weight
            att.kv_in_dim = mem_dim
            att.k_proj = nn.Linear(mem_dim, att.internal_dim, device=w.device, dtype=w.dtype)
            att.v_proj = nn.Linear(mem_dim, att.internal_dim, device=w.device, dtype=w.dtype)


def vision_features(model, pixels: torch.Tensor) -> list[dict]:
    """Per frame, what the session caches: ``vision_feats`` and ``vision_pos_embeds`` of
    ``get_image_features``."""
    out = []
    with torch.inference_mode():
        for frame in pixels:
            f = model.get_image_features(frame[None], return_dict=True)
            out.append(
                {"vision_feats": list(f.fpn_hidden_states),
                 "vision_pos_embeds": list(f.fpn_position_encoding)})
    return out


def video_session(model, pixels: torch.Tensor, video_size: tuple[int, int],
                  features: list[dict] | None = None):
    """A ``Sam2VideoInferenceSession`` over ``(T, 3, S, S)`` preprocessed frames, on the model's device and
    dtype; ``features`` (:func:`vision_features`) fill its cache, which then holds every frame."""
    device, dtype = model.no_memory_embedding.device, model.no_memory_embedding.dtype
    session = Sam2VideoInferenceSession(
        video=pixels, video_height=int(video_size[0]), video_width=int(video_size[1]),
        inference_device=device, inference_state_device=device, video_storage_device=device, dtype=dtype,
        max_vision_features_cache_size=max(1, len(pixels)))
    for i, f in enumerate(features or []):
        session.cache.cache_vision_features(i, f)
    return session


@contextmanager
def appended_prompts(model, prompts: list[torch.Tensor], append: bool = True):
    """A forward hook on ``model.prompt_encoder`` giving the k-th call's sparse output ``prompts[k]`` ``(n,
    C)`` appended (or, ``append=False``, instead); removed on exit. Yields the list of prompts not yet
    used."""
    queue = list(prompts)

    def hook(module, args, output):
        sparse, dense = output
        if not queue:
            raise RuntimeError("the prompt encoder ran more often than there are prompts")
        extra = queue.pop(0).to(sparse.device, sparse.dtype).reshape(1, 1, -1, sparse.shape[-1])
        extra = extra.expand(sparse.shape[0], sparse.shape[1], -1, -1)
        return (torch.cat([sparse, extra], dim=2) if append else extra), dense

    handle = model.prompt_encoder.register_forward_hook(hook)
    try:
        yield queue
    finally:
        handle.remove()


@dataclass
class Propagation:
    """What :func:`propagate_prompts` returns."""

    logits: torch.Tensor            # (T, O, h, w) float32 low-resolution mask logits (h = w = image_size / 4)
    object_scores: torch.Tensor     # (T, O) float32 object score logits


def add_prompts(model, session, prompts: torch.Tensor, append: bool = True) -> None:
    """Frame 0's conditioning output of each of the ``(O, n, C)`` prompts (object ids 0..O-1), memory
    encoded."""
    point = {"point_coords": torch.zeros(1, 1, 1, 2, dtype=torch.float32),
             "point_labels": -torch.ones(1, 1, 1, dtype=torch.int32)}
    for obj_id in range(len(prompts)):
        obj_idx = session.obj_id_to_idx(obj_id)
        session.add_point_inputs(obj_idx, 0, point)
        session.obj_with_new_inputs.append(obj_id)
    with torch.inference_mode(), appended_prompts(model, list(prompts), append) as left:
        model(session, frame_idx=0)
    if left:
        raise RuntimeError(f"{len(left)} prompts were not used on frame 0")


def propagate_prompts(model, pixels: torch.Tensor, video_size: tuple[int, int], prompts: torch.Tensor,
                      append: bool = True, features: list[dict] | None = None) -> Propagation:
    """Masks of every frame of ``(T, 3, S, S)`` pixels from ``(O, n, C)`` sparse prompt embeddings on frame 0,
    propagated forward by SAM 2's memory (docs/video.md). ``O = 0`` gives ``(T, 0, h, w)``."""
    T, side = len(pixels), model.config.image_size // 4
    if len(prompts) == 0:
        return Propagation(torch.zeros(T, 0, side, side), torch.zeros(T, 0))
    session = video_session(model, pixels, video_size, features)
    add_prompts(model, session, prompts, append)
    logits, scores = [None] * T, [None] * T
    with torch.inference_mode():
        for out in model.propagate_in_video_iterator(session, start_frame_idx=0):
            logits[out.frame_idx] = out.pred_masks.float().reshape(len(prompts), side, side)
            scores[out.frame_idx] = out.object_score_logits.float().reshape(len(prompts))
    return Propagation(torch.stack(logits).clone(), torch.stack(scores).clone())


__all__ = ["Propagation", "TRACKING_KEY_PAIRS", "add_prompts", "appended_prompts", "propagate_prompts",
           "set_memory_width", "tracking_key_to_hf", "video_session", "vision_features"]
