"""SAM 2's video model on transformers' ``Sam2VideoModel``: one config and builder for every SAM 2-headed
family, and the memory encoding the grounding LVLMs' SAM 2 code does.

Details: docs/sam2.md (`litelvlm.sam2.video`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from transformers import Sam2VideoConfig, Sam2VideoModel

from ..models.random_weights import default_dtype
from ..video.sam2_propagation import set_memory_width, tracking_key_to_hf
from .config import Sam2Size, sam2_config
from .keys import VERSIONS


def sam2_video_config(size: Sam2Size, image_size: int, version: str = "2.1", stability: bool = False):
    """transformers ``Sam2VideoConfig`` of a SAM 2 ``version`` at ``image_size`` (docs/sam2.md's
    settings)."""
    if version not in VERSIONS:
        raise ValueError(f"SAM 2 version must be one of {', '.join(VERSIONS)}; got {version!r}")
    image, v21 = sam2_config(size, image_size, stability=stability), version == "2.1"
    return Sam2VideoConfig(
        vision_config=image.vision_config.to_dict(),
        prompt_encoder_config=image.prompt_encoder_config.to_dict(),
        mask_decoder_config=image.mask_decoder_config.to_dict(), image_size=image_size,
        num_maskmem=size.num_maskmem, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
        enable_occlusion_spatial_embedding=v21, enable_temporal_pos_encoding_for_object_pointers=v21,
        multimask_output_in_sam=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        multimask_output_for_tracking=True, max_object_pointers_in_encoder=16, max_cond_frame_num=-1,
        memory_attention_hidden_size=size.d_model, memory_attention_num_layers=size.mem_layers,
        memory_attention_num_attention_heads=1, memory_attention_feed_forward_hidden_size=size.mem_ff,
        memory_attention_rope_feat_sizes=[image_size // 16] * 2, memory_encoder_hidden_size=size.d_model,
        memory_encoder_output_channels=size.mem_dim, mask_downsampler_embed_dim=size.mask_downsampler_embed,
        memory_fuser_embed_dim=size.d_model, memory_fuser_intermediate_dim=4 * size.d_model)


def build_video_model(size: Sam2Size, image_size: int, image_state: dict, tracking: dict[str, torch.Tensor],
                      version: str = "2.1", stability: bool = False):
    """A ``Sam2VideoModel`` (eval) of ``image_state`` (``Sam2Model``'s names) and ``tracking`` (official
    names), in the image weights' dtype and device."""
    ref = next(iter(image_state.values()))
    with default_dtype(ref.dtype), torch.device(ref.device):
        net = Sam2VideoModel(sam2_video_config(size, image_size, version, stability))
        set_memory_width(net, size.mem_dim)
    state = dict(image_state)
    state.update({tracking_key_to_hf(k): v.to(ref.device, ref.dtype) for k, v in tracking.items()})
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def cached_video_model(owner, build: Callable[[], object], ref: torch.Tensor, attr: str = "_video_model"):
    """The video model kept on ``owner`` under ``attr`` (not a submodule: ``owner``'s state dict stays the
    image path's), built by ``build()`` on first use and again when ``ref`` (an image weight) moved to another
    device or dtype. Weights edited in place later are not seen: delete the attribute."""
    net = getattr(owner, attr, None)
    if net is not None and (net.no_memory_embedding.dtype,
                            net.no_memory_embedding.device) != (ref.dtype, ref.device):
        net = None
    if net is None:
        net = build()
        object.__setattr__(owner, attr, net)
    return net


@contextlib.contextmanager
def memory_encoder(net, store_dtype: torch.dtype | None = None) -> Iterator[None]:
    """Within: ``net``'s memory encoding as the grounding LVLMs' SAM 2 code does it; restored on exit.
    transformers' ``Sam2VideoModel._encode_new_memory`` with two statements changed: a mask from point inputs
    is not binarised (``binarize_mask_from_pts_for_mem_enc`` False, ``SAM2Base``'s default: the scaled sigmoid
    of the logits), and the memory features are stored in ``store_dtype`` (None: the frame features' dtype;
    transformers stores bfloat16). The occlusion embedding is added where the model has one (SAM 2.1)."""
    def encode(current_vision_feats, pred_masks_high_res, object_score_logits, is_mask_from_pts):
        batch, channels = current_vision_feats.size(1), net.hidden_dim
        height, width = net.backbone_feature_sizes[-1]
        mh, mw = (4 * v for v in net.prompt_encoder.mask_input_size)
        if pred_masks_high_res.shape[2:] != (mh, mw):
            pred_masks_high_res = F.interpolate(pred_masks_high_res.float(), size=(mh, mw),
                                                align_corners=False,
                                                mode="bilinear", antialias=True).to(pred_masks_high_res.dtype)
        pix_feat = current_vision_feats.permute(1, 2, 0).view(batch, channels, height, width)
        mask_for_mem = torch.sigmoid(pred_masks_high_res)        # never binarised
        mask_for_mem = (mask_for_mem * net.config.sigmoid_scale_for_mem_enc
                        + net.config.sigmoid_bias_for_mem_enc)
        features, pos_enc = net.memory_encoder(pix_feat, mask_for_mem)
        if net.occlusion_spatial_embedding_parameter is not None:
            appearing = (object_score_logits > 0).float()
            features += (1 - appearing[..., None]) * net.occlusion_spatial_embedding_parameter[
                ..., None, None].expand(
                *features.shape)
        dtype = current_vision_feats.dtype if store_dtype is None else store_dtype
        features = features.to(dtype).flatten(2).permute(2, 0, 1)
        return features, pos_enc.to(pred_masks_high_res.dtype).flatten(2).permute(2, 0, 1)

    net._encode_new_memory = encode
    try:
        yield
    finally:
        del net._encode_new_memory


__all__ = ["build_video_model", "cached_video_model", "memory_encoder", "sam2_video_config"]
