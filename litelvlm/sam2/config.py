"""SAM 2's architecture sizes and the transformers ``Sam2Config`` of its image path.

The sizes transcribe the official configs (facebookresearch/sam2); ``tiny`` is this project's test size.
Importing this module is light (transformers is imported by :func:`sam2_config` when called).

Details: docs/sam2.md (`litelvlm.sam2.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LiteLVLMError
from ..models.family_card import Lazy

#: transformers (seconds to import), read when a config is built: the sizes and presets here are light
TRANSFORMERS = Lazy("transformers")

#: ``sam2_base.py`` L18: the mask logit of frames where the object score says "absent".
NO_OBJ_SCORE = -1024.0


@dataclass(frozen=True)
class Sam2Size:
    """One SAM 2 architecture: the Hiera trunk, the FPN neck width, the SAM heads, the memory modules."""

    name: str
    embed_dim: int                        # Hiera stage-1 width (doubles per stage)
    num_heads: int                        # Hiera stage-1 heads (double per stage)
    stages: tuple[int, int, int, int]     # blocks per stage
    global_att_blocks: tuple[int, ...]
    window_pos_embed_bkg: tuple[int, int]
    window_spec: tuple[int, int, int, int]
    d_model: int = 256                    # neck width = SAM prompt width (``hidden_dim``)
    decoder_mlp: int = 2048               # _build_sam_heads L226
    decoder_heads: int = 8                # _build_sam_heads L227
    iou_hidden: int = 256                 # _build_sam_heads L231
    mem_dim: int = 64                     # memory_encoder.out_dim
    mem_layers: int = 4                   # memory_attention.num_layers
    mem_ff: int = 2048                    # memory_attention.layer.dim_feedforward
    num_maskmem: int = 7
    mask_downsampler_embed: int = 256     # MaskDownSampler(embed_dim=256) default (memory_encoder.py L28)

    @property
    def dims(self) -> tuple[int, ...]:
        """The four stage widths (``dim_mul`` 2.0, hieradet.py L192, L247-248)."""
        return tuple(self.embed_dim * 2 ** i for i in range(len(self.stages)))

    @property
    def heads(self) -> tuple[int, ...]:
        """The four stages' head counts (``head_mul`` 2.0, hieradet.py L193, L249)."""
        return tuple(self.num_heads * 2 ** i for i in range(len(self.stages)))


SAM2_HIERA_B_PLUS = Sam2Size(name="sam2.1_hiera_b+", embed_dim=112, num_heads=2, stages=(2, 3, 16, 3),
                             global_att_blocks=(12, 16, 20), window_pos_embed_bkg=(14, 14),
                             window_spec=(8, 4, 14, 7))
SAM2_HIERA_L = Sam2Size(name="sam2_hiera_l", embed_dim=144, num_heads=2, stages=(2, 6, 36, 4),
                        global_att_blocks=(23, 33, 43), window_pos_embed_bkg=(7, 7),
                        window_spec=(8, 4, 16, 8))
SAM2_TINY = Sam2Size(name="tiny", embed_dim=8, num_heads=1, stages=(1, 2, 3, 2), global_att_blocks=(4,),
                     window_pos_embed_bkg=(4, 4), window_spec=(8, 4, 6, 2), d_model=32, mem_dim=16,
                     mem_layers=1, mem_ff=64, num_maskmem=3, mask_downsampler_embed=32)
#: every size this project builds, by name
SAM2_SIZES: dict[str, Sam2Size] = {s.name: s for s in (SAM2_HIERA_B_PLUS, SAM2_HIERA_L, SAM2_TINY)}


def sam2_size(name: str | Sam2Size) -> Sam2Size:
    """The named SAM 2 size (an unknown name is an error listing the known ones)."""
    if isinstance(name, Sam2Size):
        return name
    if name not in SAM2_SIZES:
        raise LiteLVLMError(f"SAM 2 size {name!r} is not one this project builds; known: "
                            + ", ".join(sorted(SAM2_SIZES)))
    return SAM2_SIZES[name]


def sam2_config(size: str | Sam2Size, image_size: int, stability: bool = False):
    """transformers ``Sam2Config`` of a SAM 2 size at a square input of ``image_size`` pixels (the image model
    only: the memory modules the video path needs are not part of ``Sam2Model``). ``stability``: the mask
    decoder's ``dynamic_multimask_via_stability`` (delta 0.05, threshold 0.98), which ``build_sam2``'s
    ``apply_postprocessing`` sets (``build_sam.py`` L19-27); ``MaskDecoder``'s default is off
    (``mask_decoder.py`` L28)."""
    transformers = TRANSFORMERS.get()

    s = sam2_size(size)
    backbone = transformers.Sam2HieraDetConfig(
        hidden_size=s.embed_dim, num_attention_heads=s.num_heads, image_size=[image_size, image_size],
        patch_kernel_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], query_stride=[2, 2],
        num_query_pool_stages=3, blocks_per_stage=list(s.stages), embed_dim_per_stage=list(s.dims),
        num_attention_heads_per_stage=list(s.heads), window_size_per_stage=list(s.window_spec),
        global_attention_blocks=list(s.global_att_blocks),
        window_positional_embedding_background_size=list(s.window_pos_embed_bkg), mlp_ratio=4.0,
        hidden_act="gelu", layer_norm_eps=1e-6)
    sizes = [[image_size // stride] * 2 for stride in (4, 8, 16)]
    vision = transformers.Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=list(s.dims[::-1]),
                              backbone_feature_sizes=sizes, fpn_hidden_size=s.d_model,
                                           fpn_top_down_levels=[2, 3],
                              num_feature_levels=3)
    prompt = transformers.Sam2PromptEncoderConfig(hidden_size=s.d_model, image_size=image_size, patch_size=16,
                                     mask_input_channels=16)
    decoder = transformers.Sam2MaskDecoderConfig(hidden_size=s.d_model, mlp_dim=s.decoder_mlp,
                                                 num_hidden_layers=2,
                                    num_attention_heads=s.decoder_heads, attention_downsample_rate=2,
                                    num_multimask_outputs=3, iou_head_depth=3,
                                                 iou_head_hidden_dim=s.iou_hidden,
                                    dynamic_multimask_via_stability=False)
    if stability:
        decoder.dynamic_multimask_via_stability = True
        decoder.dynamic_multimask_stability_delta = 0.05
        decoder.dynamic_multimask_stability_thresh = 0.98
    return transformers.Sam2Config(vision_config=vision, prompt_encoder_config=prompt,
                                   mask_decoder_config=decoder)


__all__ = ["NO_OBJ_SCORE", "SAM2_HIERA_B_PLUS", "SAM2_HIERA_L", "SAM2_SIZES",
           "SAM2_TINY", "Sam2Size", "sam2_config", "sam2_size"]
