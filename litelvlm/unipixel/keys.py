"""The tensor names of a released UniPixel checkpoint, and their mapping onto the project's modules.

A ``PixelQwen2_5_VLForConditionalGeneration`` (PolyU-ChenLab/UniPixel @5c8e941, ``unipixel/model/
qwen2_5_vl.py`` L55-106) saved by transformers 4.53's ``save_pretrained`` holds, besides Qwen2.5-VL's
released names (``visual.*``, ``model.*``, ``lm_head.weight``; :mod:`litelvlm.qwen.checkpoint`):

* ``sam2.*``: its SAM 2.1 module (``SAM2Train`` when trained, ``SAM2VideoPredictor`` at inference: the
  same parameters) under SAM 2's own names, ``memory_encoder.fuser.layers.{i}.gamma`` renamed ``.weight``
  (``sam2/modeling/memory_encoder.py`` L94-98, and ``load_sam2_weights``, qwen2_5_vl.py L131-135). The
  image path reads the trunk, neck, prompt encoder, mask decoder and ``no_mem_embed``; they map onto
  transformers' ``Sam2Model`` (:data:`SAM2_KEY_PAIRS`, after transformers' own ``convert_sam2_to_hf.py``
  ``KEYS_TO_MODIFY_MAPPING``; ``sam_prompt_encoder.point_embeddings.{0..3}`` are stacked into
  ``prompt_encoder.point_embed.weight``, and the random-Fourier matrix is also
  ``shared_image_embedding.positional_embedding``). The memory attention, memory encoder, object-pointer
  and temporal-encoding tensors serve later frames of a video only (:func:`tracking_shapes`);
* ``seg_head.{0,1,3}.*``: the seg head (:mod:`litelvlm.unipixel.head`);
* ``ref_encoder.*``, ``ref_proj_single.*``, ``ref_proj_double.*``, ``ref_proj.1.*``, ``tem_pe.*``,
  ``tem_emb.*``, ``tem_proj.*``, ``msk_proj.{0,2}.*`` (L78-94): they encode point / region prompts
  (``<|ref|>``, ``<|mem|>``) into the LLM's input, which referring segmentation never has
  (:func:`extra_shapes`).

The loader keeps the first three groups' image-path tensors and checks every other name and shape against
these tables, so a checkpoint of another layout fails by name.
"""

from __future__ import annotations

import re

from ..checkpoint_keys import convert_key, template_regex
from .config import Sam2Size

#: (UniPixel ``sam2.`` key prefix, transformers ``Sam2Model`` key prefix); ``{a}`` is an integer. Ordered most
#: specific first; a template without a trailing dot must match the whole key.
SAM2_KEY_PAIRS: tuple[tuple[str, str], ...] = (
    ("image_encoder.trunk.patch_embed.proj.", "vision_encoder.backbone.patch_embed.projection."),
    ("image_encoder.trunk.pos_embed", "vision_encoder.backbone.pos_embed"),
    ("image_encoder.trunk.pos_embed_window", "vision_encoder.backbone.pos_embed_window"),
    ("image_encoder.trunk.blocks.{a}.norm1.", "vision_encoder.backbone.blocks.{a}.layer_norm1."),
    ("image_encoder.trunk.blocks.{a}.norm2.", "vision_encoder.backbone.blocks.{a}.layer_norm2."),
    ("image_encoder.trunk.blocks.{a}.mlp.layers.0.", "vision_encoder.backbone.blocks.{a}.mlp.proj_in."),
    ("image_encoder.trunk.blocks.{a}.mlp.layers.1.", "vision_encoder.backbone.blocks.{a}.mlp.proj_out."),
    ("image_encoder.trunk.blocks.{a}.", "vision_encoder.backbone.blocks.{a}."),
    ("image_encoder.neck.convs.{a}.conv.", "vision_encoder.neck.convs.{a}."),
    ("sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
     "prompt_encoder.shared_embedding.positional_embedding"),
    ("sam_prompt_encoder.not_a_point_embed.", "prompt_encoder.not_a_point_embed."),
    ("sam_prompt_encoder.no_mask_embed.", "prompt_encoder.no_mask_embed."),
    ("sam_prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("sam_prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("sam_prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("sam_prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("sam_prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("sam_mask_decoder.transformer.layers.{a}.norm1.", "mask_decoder.transformer.layers.{a}.layer_norm1."),
    ("sam_mask_decoder.transformer.layers.{a}.norm2.", "mask_decoder.transformer.layers.{a}.layer_norm2."),
    ("sam_mask_decoder.transformer.layers.{a}.norm3.", "mask_decoder.transformer.layers.{a}.layer_norm3."),
    ("sam_mask_decoder.transformer.layers.{a}.norm4.", "mask_decoder.transformer.layers.{a}.layer_norm4."),
    ("sam_mask_decoder.transformer.layers.{a}.mlp.layers.0.", "mask_decoder.transformer.layers.{a}.mlp.proj_in."),
    ("sam_mask_decoder.transformer.layers.{a}.mlp.layers.1.", "mask_decoder.transformer.layers.{a}.mlp.proj_out."),
    ("sam_mask_decoder.transformer.layers.{a}.self_attn.out_proj.",
     "mask_decoder.transformer.layers.{a}.self_attn.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.cross_attn_token_to_image.out_proj.",
     "mask_decoder.transformer.layers.{a}.cross_attn_token_to_image.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.cross_attn_image_to_token.out_proj.",
     "mask_decoder.transformer.layers.{a}.cross_attn_image_to_token.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.", "mask_decoder.transformer.layers.{a}."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.out_proj.",
     "mask_decoder.transformer.final_attn_token_to_image.o_proj."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.", "mask_decoder.transformer.final_attn_token_to_image."),
    ("sam_mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("sam_mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("sam_mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("sam_mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.0.", "mask_decoder.output_hypernetworks_mlps.{a}.proj_in."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.1.", "mask_decoder.output_hypernetworks_mlps.{a}.layers.0."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.2.", "mask_decoder.output_hypernetworks_mlps.{a}.proj_out."),
    ("sam_mask_decoder.iou_prediction_head.layers.0.", "mask_decoder.iou_prediction_head.proj_in."),
    ("sam_mask_decoder.iou_prediction_head.layers.1.", "mask_decoder.iou_prediction_head.layers.0."),
    ("sam_mask_decoder.iou_prediction_head.layers.2.", "mask_decoder.iou_prediction_head.proj_out."),
    ("sam_mask_decoder.pred_obj_score_head.layers.0.", "mask_decoder.pred_obj_score_head.proj_in."),
    ("sam_mask_decoder.pred_obj_score_head.layers.1.", "mask_decoder.pred_obj_score_head.layers.0."),
    ("sam_mask_decoder.pred_obj_score_head.layers.2.", "mask_decoder.pred_obj_score_head.proj_out."),
    ("sam_mask_decoder.conv_s0.", "mask_decoder.conv_s0."),
    ("sam_mask_decoder.conv_s1.", "mask_decoder.conv_s1."),
    ("sam_mask_decoder.iou_token.", "mask_decoder.iou_token."),
    ("sam_mask_decoder.mask_tokens.", "mask_decoder.mask_tokens."),
    ("sam_mask_decoder.obj_score_token.", "mask_decoder.obj_score_token."),
    ("no_mem_embed", "no_memory_embedding"),
)
#: ``sam_prompt_encoder.point_embeddings.{i}.weight`` (four ``(1, C)``) <-> one ``(4, C)`` tensor
POINT_EMBED = re.compile(r"^sam_prompt_encoder\.point_embeddings\.(\d)\.weight$")
POINT_EMBED_HF = "prompt_encoder.point_embed.weight"
#: the random-Fourier matrix transformers keeps twice (the image-wide copy is the prompt encoder's)
SHARED_PE_HF = "shared_image_embedding.positional_embedding"
PE_HF = "prompt_encoder.shared_embedding.positional_embedding"


_FWD = [(template_regex(o), h) for o, h in SAM2_KEY_PAIRS]
_INV = [(template_regex(h), o) for o, h in SAM2_KEY_PAIRS]


def sam2_key_to_hf(key: str) -> str | None:
    """A UniPixel ``sam2.``-relative key -> its ``Sam2Model`` key (None: not an image-path tensor, or the four
    point embeddings, which :func:`sam2_to_hf` stacks)."""
    return convert_key(key, _FWD)


def sam2_key_from_hf(key: str) -> str | None:
    """A ``Sam2Model`` key -> UniPixel's ``sam2.``-relative name (None for the point embeddings and the shared copy)."""
    return convert_key(key, _INV)


def sam2_to_hf(sd: dict) -> tuple[dict, dict]:
    """(``Sam2Model`` state dict, {unmapped UniPixel key: tensor}) of UniPixel ``sam2.``-relative tensors."""
    out, rest, points = {}, {}, {}
    for k, v in sd.items():
        m = POINT_EMBED.match(k)
        if m:
            points[int(m.group(1))] = v
            continue
        hf = sam2_key_to_hf(k)
        if hf is None:
            rest[k] = v
        else:
            out[hf] = v
    if points:
        if sorted(points) != [0, 1, 2, 3]:
            rest.update({f"sam_prompt_encoder.point_embeddings.{i}.weight": v for i, v in points.items()})
        else:
            import torch

            out[POINT_EMBED_HF] = torch.cat([points[i] for i in range(4)], dim=0)
    if PE_HF in out:
        out[SHARED_PE_HF] = out[PE_HF]
    return out, rest


def sam2_from_hf(sd: dict) -> dict:
    """UniPixel ``sam2.``-relative tensors of a ``Sam2Model`` state dict (the shared copy dropped)."""
    out = {}
    for k, v in sd.items():
        if k == SHARED_PE_HF:
            continue
        if k == POINT_EMBED_HF:
            out.update({f"sam_prompt_encoder.point_embeddings.{i}.weight": v[i:i + 1] for i in range(v.shape[0])})
            continue
        name = sam2_key_from_hf(k)
        if name is None:
            raise KeyError(f"no UniPixel name for Sam2Model tensor {k!r}")
        out[name] = v
    return out


def _linear(name: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _vector(name: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n,), f"{name}.bias": (n,)}


def _conv(name: str, n_in: int, n_out: int, k: int, groups: int = 1) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in // groups, k, k), f"{name}.bias": (n_out,)}


def tracking_shapes(s: Sam2Size) -> dict[str, tuple[int, ...]]:
    """Shapes of the ``sam2.`` tensors only the video path reads (SAM2Base.__init__, sam2_base.py L111-180,
    L239-251; ``MemoryAttention`` and ``MemoryEncoder`` as the SAM 2.1 config builds them)."""
    d, m = s.d_model, s.mem_dim
    out: dict[str, tuple[int, ...]] = {
        "maskmem_tpos_enc": (s.num_maskmem, 1, 1, m), "no_mem_pos_enc": (1, 1, d), "no_obj_ptr": (1, d),
        "no_obj_embed_spatial": (1, m), **_conv("mask_downsample", 1, 1, 4)}
    for i in range(s.mem_layers):  # memory_attention.py: RoPEAttention self / cross (kv_in_dim = mem_dim)
        p = f"memory_attention.layers.{i}"
        for attn, kv in (("self_attn", d), ("cross_attn_image", m)):
            out.update(_linear(f"{p}.{attn}.q_proj", d, d) | _linear(f"{p}.{attn}.k_proj", kv, d)
                       | _linear(f"{p}.{attn}.v_proj", kv, d) | _linear(f"{p}.{attn}.out_proj", d, d))
        out.update(_linear(f"{p}.linear1", d, s.mem_ff) | _linear(f"{p}.linear2", s.mem_ff, d))
        out.update(_vector(f"{p}.norm1", d) | _vector(f"{p}.norm2", d) | _vector(f"{p}.norm3", d))
    out.update(_vector("memory_attention.norm", d))
    chans, e = 1, s.mask_downsampler_embed  # MaskDownSampler: kernel 3 stride 2 -> 4 conv+LayerNorm2d stages
    for i in range(4):
        out.update(_conv(f"memory_encoder.mask_downsampler.encoder.{3 * i}", chans, chans * 4, 3))
        out.update(_vector(f"memory_encoder.mask_downsampler.encoder.{3 * i + 1}", chans * 4))
        chans *= 4
    out.update(_conv("memory_encoder.mask_downsampler.encoder.12", chans, e, 1))
    out.update(_conv("memory_encoder.pix_feat_proj", d, d, 1))
    for i in range(2):  # Fuser of 2 CXBlocks (gamma saved as .weight)
        p = f"memory_encoder.fuser.layers.{i}"
        out.update({f"{p}.weight": (d,)} | _conv(f"{p}.dwconv", d, d, 7, groups=d) | _vector(f"{p}.norm", d)
                   | _linear(f"{p}.pwconv1", d, 4 * d) | _linear(f"{p}.pwconv2", 4 * d, d))
    out.update(_conv("memory_encoder.out_proj", d, m, 1))
    for i in range(3):  # use_mlp_for_obj_ptr_proj: MLP(d, d, d, 3)
        out.update(_linear(f"obj_ptr_proj.layers.{i}", d, d))
    out.update(_linear("obj_ptr_tpos_proj", d, m))
    return out


def prompt_encoder_shapes(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
    """A SAM ``PromptEncoder(embed_dim=d, mask_in_chans=16)``'s tensors (prompt_encoder.py L40-64)."""
    out = {f"{prefix}.pe_layer.positional_encoding_gaussian_matrix": (2, d // 2)}
    out.update({f"{prefix}.point_embeddings.{i}.weight": (1, d) for i in range(4)})
    out.update({f"{prefix}.not_a_point_embed.weight": (1, d), f"{prefix}.no_mask_embed.weight": (1, d)})
    out.update(_conv(f"{prefix}.mask_downscaling.0", 1, 4, 2) | _vector(f"{prefix}.mask_downscaling.1", 4)
               | _conv(f"{prefix}.mask_downscaling.3", 4, 16, 2) | _vector(f"{prefix}.mask_downscaling.4", 16)
               | _conv(f"{prefix}.mask_downscaling.6", 16, d, 1))
    return out


def extra_shapes(sam_dim: int, llm_dim: int, merger_dim: int) -> dict[str, tuple[int, ...]]:
    """The prompt-encoding modules referring segmentation does not use (qwen2_5_vl.py L78-94); ``merger_dim`` is
    the vision merger's input width (``visual.merger.hidden_size``: vision width x 4)."""
    out = prompt_encoder_shapes("ref_encoder", sam_dim)
    out.update(_linear("ref_proj_single", 2 * sam_dim, 3 * sam_dim) | _linear("ref_proj_double", 3 * sam_dim, 3 * sam_dim)
               | _linear("ref_proj.1", 6 * sam_dim, llm_dim))
    out.update({"tem_pe.positional_encoding_gaussian_matrix": (1, sam_dim // 2), "tem_emb.weight": (1, sam_dim)})
    out.update(_linear("tem_proj", sam_dim, 3 * sam_dim))
    out.update(_linear("msk_proj.0", merger_dim, merger_dim) | _linear("msk_proj.2", merger_dim, llm_dim))
    return out
