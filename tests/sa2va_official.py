"""The official Sa2VA-Qwen2.5-VL and Sa2VA-Qwen3-VL code, imported for tests only (never by the library).

bytedance/Sa2VA @9832e1a, ``projects/sa2va/hf/models_qwen2_5_vl/`` and ``models_qwen3vl/`` (:data:`FOLDERS`,
a copy in ``../shared/official/Sa2VA``):
``sam2.py`` imports torch alone and runs as it is; ``modeling_sa2va_qwen.py`` imports with transformers 5 once
``qwen_vl_utils`` (absent here, only ``process_vision_info`` is named, never called by what the tests run) is
stubbed. The official code is CUDA-only in three places the tests step around without editing it:
``init_state`` names ``cuda`` as the state's devices (set back to the CPU after the call),
``_get_image_feature`` and the memory read call ``Tensor.cuda()`` (made the identity while the official code
runs:
:func:`on_cpu`), and ``language_embd_inference`` opens a CUDA autocast (disabled on a machine without CUDA,
with a warning).

:func:`tiny_sam2` builds the official ``SAM2VideoPredictor`` with the settings of ``SAM2.__init__``
(``sam2.py`` L86-126) and the module constructors of L137-289, at the sizes of the project's tiny SAM 2 preset
(the released model's are in the comments there); ``MemoryEncoder``'s ``in_dim`` is the preset's width (its
default 256 is the released width).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "official" / "Sa2VA"
#: the official model folder of each backbone (``projects/sa2va/hf/``)
FOLDERS = {"qwen2.5-vl": "models_qwen2_5_vl", "qwen3-vl": "models_qwen3vl"}
CODE = ROOT / "projects" / "sa2va" / "hf" / FOLDERS["qwen2.5-vl"]


def available(backbone: str = "qwen2.5-vl") -> bool:
    code = CODE.parent / FOLDERS[backbone]
    return (code / "sam2.py").is_file() and (code / "modeling_sa2va_qwen.py").is_file()


def official(module: str, backbone: str = "qwen2.5-vl"):
    """``sam2``, ``modeling_sa2va_qwen`` or ``configuration_sa2va_chat`` of the backbone's official folder,
    imported as-is."""
    package = f"sa2va_official_{FOLDERS[backbone]}"
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(CODE.parent / FOLDERS[backbone])]
        sys.modules[package] = pkg
    if "qwen_vl_utils" not in sys.modules:
        stub = types.ModuleType("qwen_vl_utils")
        stub.process_vision_info = None
        sys.modules["qwen_vl_utils"] = stub
    return importlib.import_module(f"{package}.{module}")


@contextlib.contextmanager
def on_cpu():
    """``Tensor.cuda`` as the identity while the official code runs (module docstring)."""
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def tiny_sam2(size, image_size: int):
    """The official ``SAM2VideoPredictor`` (``sam2.py`` L86-126) at a project SAM 2 size (``Sam2Size``)."""
    s = official("sam2")
    d, m = size.d_model, size.mem_dim
    trunk = s.Hiera(embed_dim=size.embed_dim, num_heads=size.num_heads, stages=list(size.stages),
                    global_att_blocks=list(size.global_att_blocks),
                    window_pos_embed_bkg_spatial_size=list(size.window_pos_embed_bkg),
                    window_spec=list(size.window_spec))
    neck = s.FpnNeck(d_model=d,
                     position_encoding=s.PositionEmbeddingSine(num_pos_feats=d, normalize=True, scale=None,
                                                                          temperature=10000),
                     backbone_channel_list=list(size.dims[::-1]), fpn_top_down_levels=[2, 3],
                     fpn_interp_model="nearest")
    image_encoder = s.ImageEncoder(scalp=1, trunk=trunk, neck=neck)
    feat = [image_size // 16] * 2
    self_attn = s.RoPEAttention(rope_theta=10000.0, feat_sizes=feat, embedding_dim=d, num_heads=1,
                                downsample_rate=1, dropout=0.1)
    cross_attn = s.RoPEAttention(rope_theta=10000.0, feat_sizes=feat, rope_k_repeat=True, embedding_dim=d,
                                 num_heads=1, downsample_rate=1, dropout=0.1, kv_in_dim=m)
    layer = s.MemoryAttentionLayer(activation="relu", dim_feedforward=size.mem_ff, dropout=0.1,
                                   pos_enc_at_attn=False, d_model=d, pos_enc_at_cross_attn_queries=False,
                                   pos_enc_at_cross_attn_keys=True,
                                   self_attention=self_attn, cross_attention=cross_attn)
    memory_attention = s.MemoryAttention(d_model=d, pos_enc_at_input=True, num_layers=size.mem_layers,
                                         layer=layer)
    fuser = s.Fuser(
        layer=s.CXBlock(dim=d, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True),
                    num_layers=2)
    memory_encoder = s.MemoryEncoder(
        out_dim=m, position_encoding=s.PositionEmbeddingSine(num_pos_feats=m, normalize=True, scale=None,
                                                             temperature=10000),
        mask_downsampler=s
        .MaskDownSampler(embed_dim=size.mask_downsampler_embed, kernel_size=3, stride=2, padding=1),
        fuser=fuser, in_dim=d)
    model = s.SAM2VideoPredictor(
        image_encoder=image_encoder, memory_attention=memory_attention, memory_encoder=memory_encoder,
        num_maskmem=size.num_maskmem, image_size=image_size, sigmoid_scale_for_mem_enc=20.0,
        sigmoid_bias_for_mem_enc=-10.0, use_mask_input_as_output_without_sam=True,
        directly_add_no_mem_embed=True,
        use_high_res_features_in_sam=True, multimask_output_in_sam=True, iou_prediction_use_sigmoid=True,
        use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=False, only_obj_ptrs_in_the_past_for_eval=True,
        pred_obj_scores=True, pred_obj_scores_mlp=True, fixed_no_obj_ptr=True,
        multimask_output_for_tracking=True,
        use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
        use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
        sam_mask_decoder_extra_args={"dynamic_multimask_via_stability": True,
                                     "dynamic_multimask_stability_delta": 0.05,
                                     "dynamic_multimask_stability_thresh": 0.98})
    return model.eval()


def official_masks(sam2_model, frames, language_embd, original_size, num_cond: int) -> torch.Tensor:
    """``predict_forward``'s mask step (``modeling_sa2va_qwen.py`` L240-252) for one ``[SEG]``: ``init_state``
    on the SAM 2 pixels of every frame, ``language_embd_inference`` with the prompt on the first ``num_cond``
    frames, the masks resized to the original size and ``sigmoid > 0.5``. Returns (T, H, W) bool."""
    return official_logits(sam2_model, frames, language_embd, original_size, num_cond).sigmoid() > 0.5


def official_logits(sam2_model, frames, language_embd, original_size, num_cond: int) -> torch.Tensor:
    """(T, H, W) float32: :func:`official_masks` before ``sigmoid > 0.5``."""
    wrapper = types.SimpleNamespace(sam2_model=sam2_model)
    s = official("sam2")
    with on_cpu(), torch.no_grad(), contextlib.suppress(Warning):
        state = sam2_model.init_state(frames)
        state["device"] = state["storage_device"] = torch.device("cpu")
        pred = s.SAM2.language_embd_inference(wrapper, state, [language_embd] * num_cond)
    h, w = original_size
    return torch.nn.functional.interpolate(pred, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
