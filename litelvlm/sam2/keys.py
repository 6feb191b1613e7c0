"""SAM 2's official tensor names, their mapping onto transformers' ``Sam2Model``, and the tracking tensors'
shapes.

A SAM 2 module saved under its own names (``SAM2Base`` / ``SAM2VideoPredictor``, facebookresearch/sam2, as the
grounding LVLMs save it) holds the image path (trunk, neck, prompt encoder, mask decoder, ``no_mem_embed``),
which maps onto transformers' ``Sam2Model`` (:data:`SAM2_KEY_PAIRS`, after transformers' own
``convert_sam2_to_hf.py`` ``KEYS_TO_MODIFY_MAPPING``; ``sam_prompt_encoder.point_embeddings.{0..3}`` are
stacked into ``prompt_encoder.point_embed.weight``, and the random-Fourier matrix is also
``shared_image_embedding.positional_embedding``), and the tracking tensors only a video's later frames read
(memory attention, memory encoder, object pointers, temporal encodings: :func:`tracking_shapes`, for SAM 2.1
or 2.0; their transformers names are :func:`litelvlm.video.sam2_propagation.tracking_key_to_hf`'s).
:func:`randomize` fills random test weights.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import torch

from ..models.checkpoint_keys import convert_key, template_regex
from ..models.random_weights import fan_in_plan, fast_fill
from .config import Sam2Size

if TYPE_CHECKING:
    import torch

#: (official SAM 2 key prefix, transformers ``Sam2Model`` key prefix); ``{a}`` is an integer. Ordered most
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
    ("sam_mask_decoder.transformer.layers.{a}.mlp.layers.0.",
     "mask_decoder.transformer.layers.{a}.mlp.proj_in."),
    ("sam_mask_decoder.transformer.layers.{a}.mlp.layers.1.",
     "mask_decoder.transformer.layers.{a}.mlp.proj_out."),
    ("sam_mask_decoder.transformer.layers.{a}.self_attn.out_proj.",
     "mask_decoder.transformer.layers.{a}.self_attn.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.cross_attn_token_to_image.out_proj.",
     "mask_decoder.transformer.layers.{a}.cross_attn_token_to_image.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.cross_attn_image_to_token.out_proj.",
     "mask_decoder.transformer.layers.{a}.cross_attn_image_to_token.o_proj."),
    ("sam_mask_decoder.transformer.layers.{a}.", "mask_decoder.transformer.layers.{a}."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.out_proj.",
     "mask_decoder.transformer.final_attn_token_to_image.o_proj."),
    ("sam_mask_decoder.transformer.final_attn_token_to_image.",
     "mask_decoder.transformer.final_attn_token_to_image."),
    ("sam_mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("sam_mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("sam_mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("sam_mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.0.",
     "mask_decoder.output_hypernetworks_mlps.{a}.proj_in."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.1.",
     "mask_decoder.output_hypernetworks_mlps.{a}.layers.0."),
    ("sam_mask_decoder.output_hypernetworks_mlps.{a}.layers.2.",
     "mask_decoder.output_hypernetworks_mlps.{a}.proj_out."),
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
    """An official-name key -> its ``Sam2Model`` key (None: not an image-path tensor, or the four
    point embeddings, which :func:`sam2_to_hf` stacks)."""
    return convert_key(key, _FWD)


def sam2_key_from_hf(key: str) -> str | None:
    """A ``Sam2Model`` key -> official name (None for the point embeddings and the shared copy)."""
    return convert_key(key, _INV)


def sam2_to_hf(sd: dict) -> tuple[dict, dict]:
    """(``Sam2Model`` state dict, {unmapped official key: tensor}) of official-name tensors."""
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
            out[POINT_EMBED_HF] = torch.cat([points[i] for i in range(4)], dim=0)
    if PE_HF in out:
        out[SHARED_PE_HF] = out[PE_HF]
    return out, rest


def sam2_from_hf(sd: dict) -> dict:
    """official-name tensors of a ``Sam2Model`` state dict (the shared copy dropped)."""
    out = {}
    for k, v in sd.items():
        if k == SHARED_PE_HF:
            continue
        if k == POINT_EMBED_HF:
            out.update(
                {f"sam_prompt_encoder.point_embeddings.{i}.weight": v[i:i + 1] for i in range(v.shape[0])})
            continue
        name = sam2_key_from_hf(k)
        if name is None:
            raise KeyError(f"no official SAM 2 name for Sam2Model tensor {k!r}")
        out[name] = v
    return out


#: the tracking tensors SAM 2.1 added (``no_obj_embed_spatial``, ``proj_tpos_enc_in_obj_ptrs``); SAM 2.0 has
#: none
SAM2_1_ONLY = ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias")
#: the SAM 2 versions :func:`tracking_shapes` and :func:`litelvlm.sam2.video.sam2_video_config` know
VERSIONS = ("2.0", "2.1")


def linear_shapes(name: str, n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def vector_shapes(name: str, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n,), f"{name}.bias": (n,)}


def conv_shapes(name: str, n_in: int, n_out: int, k: int, groups: int = 1) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (n_out, n_in // groups, k, k), f"{name}.bias": (n_out,)}


def tracking_shapes(s: Sam2Size, version: str = "2.1") -> dict[str, tuple[int, ...]]:
    """Shapes of the SAM 2 tensors only the video path reads (SAM2Base.__init__, sam2_base.py L111-180,
    L239-251; ``MemoryAttention`` and ``MemoryEncoder`` as the configs build them); ``version`` 2.0 has no
    :data:`SAM2_1_ONLY` tensors."""
    if version not in VERSIONS:
        raise ValueError(f"SAM 2 version must be one of {', '.join(VERSIONS)}; got {version!r}")
    d, m = s.d_model, s.mem_dim
    out: dict[str, tuple[int, ...]] = {
        "maskmem_tpos_enc": (s.num_maskmem, 1, 1, m), "no_mem_pos_enc": (1, 1, d), "no_obj_ptr": (1, d),
        "no_obj_embed_spatial": (1, m), **conv_shapes("mask_downsample", 1, 1, 4)}
    for i in range(s.mem_layers):  # memory_attention.py: RoPEAttention self / cross (kv_in_dim = mem_dim)
        p = f"memory_attention.layers.{i}"
        for attn, kv in (("self_attn", d), ("cross_attn_image", m)):
            out.update(linear_shapes(f"{p}.{attn}.q_proj", d, d) | linear_shapes(f"{p}.{attn}.k_proj", kv, d)
                       | linear_shapes(f"{p}.{attn}.v_proj", kv, d)
                       | linear_shapes(f"{p}.{attn}.out_proj", d, d))
        out.update(linear_shapes(f"{p}.linear1", d, s.mem_ff) | linear_shapes(f"{p}.linear2", s.mem_ff, d))
        out.update(vector_shapes(f"{p}.norm1", d) | vector_shapes(f"{p}.norm2", d)
                   | vector_shapes(f"{p}.norm3", d))
    out.update(vector_shapes("memory_attention.norm", d))
    chans, e = 1, s.mask_downsampler_embed  # MaskDownSampler: kernel 3 stride 2 -> 4 conv+LayerNorm2d stages
    for i in range(4):
        out.update(conv_shapes(f"memory_encoder.mask_downsampler.encoder.{3 * i}", chans, chans * 4, 3))
        out.update(vector_shapes(f"memory_encoder.mask_downsampler.encoder.{3 * i + 1}", chans * 4))
        chans *= 4
    out.update(conv_shapes("memory_encoder.mask_downsampler.encoder.12", chans, e, 1))
    out.update(conv_shapes("memory_encoder.pix_feat_proj", d, d, 1))
    for i in range(2):  # Fuser of 2 CXBlocks (``gamma``, saved as ``.weight``)
        p = f"memory_encoder.fuser.layers.{i}"
        out.update({f"{p}.weight": (d,)} | conv_shapes(f"{p}.dwconv", d, d, 7, groups=d)
                   | vector_shapes(f"{p}.norm", d)
                   | linear_shapes(f"{p}.pwconv1", d, 4 * d) | linear_shapes(f"{p}.pwconv2", 4 * d, d))
    out.update(conv_shapes("memory_encoder.out_proj", d, m, 1))
    for i in range(3):  # use_mlp_for_obj_ptr_proj: MLP(d, d, d, 3)
        out.update(linear_shapes(f"obj_ptr_proj.layers.{i}", d, d))
    out.update(linear_shapes("obj_ptr_tpos_proj", d, m))
    return out if version == "2.1" else {k: v for k, v in out.items() if k not in SAM2_1_ONLY}


def randomize(tensors, gen: torch.Generator) -> None:
    """Every floating tensor of ``(name, tensor)`` pairs random (SAM 2 zero-initialises some): N(0, 1/fan_in)
    for matrices, N(0, 0.25) for vectors, N(0, 1) for a random-Fourier matrix (as SAM draws it)."""
    with torch.no_grad():
        for name, t in tensors:
            if not t.is_floating_point():
                continue
            r = torch.randn(t.shape, generator=gen)
            if "positional_encoding_gaussian_matrix" not in name and "positional_embedding" not in name:
                r = r * (t[0].numel() ** -0.5 if t.dim() > 1 else 0.5)
            t.copy_(r.to(t.dtype))


def fill_random(parts, sam2, seed: int, fast: bool) -> None:
    """Fill a family's random SAM 2 side, ``parts`` (state dicts), in place:
    :func:`~litelvlm.models.random_weights.fast_fill` of each tensor's fan-in plan (``fast``, the full-size
    presets) or :func:`randomize` (the tiny ones, their exact weights), seeded ``seed + 1``; then the prompt
    encoder's Fourier matrix shared with ``sam2``'s image embedding, as SAM 2 shares it."""
    if fast:
        fast_fill(fan_in_plan(kv for part in parts for kv in part.items()), seed + 1,
                  desc="random SAM 2: filling")
    else:
        gen = torch.Generator().manual_seed(seed + 1)
        for part in parts:
            randomize(part.items(), gen)
    sam2.model.shared_image_embedding.positional_embedding.copy_(
        sam2.model.prompt_encoder.shared_embedding.positional_embedding)


__all__ = ["POINT_EMBED_HF", "SAM2_1_ONLY", "SAM2_KEY_PAIRS", "VERSIONS", "conv_shapes", "fill_random",
           "linear_shapes", "randomize",
           "sam2_from_hf", "sam2_key_from_hf", "sam2_key_to_hf", "sam2_to_hf", "tracking_shapes",
           "vector_shapes"]
