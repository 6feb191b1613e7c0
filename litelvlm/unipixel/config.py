"""UniPixel's sizes: which Qwen2.5-VL, which SAM 2.1, the SAM input size and the hidden-state prompt length.

Source: PolyU-ChenLab/UniPixel @5c8e941. Both released models are trained by ``scripts/launch_3b.sh`` and
``scripts/launch_7b.sh`` (stage 3, L102-151, the one whose ``--save_full_model True`` folder is released):
``--model_name_or_path model_zoo/Qwen2.5-VL-{3B,7B}-Instruct`` (L104), ``--sam2_config
configs/sam2.1_hiera_b+`` (L108), ``--sam2_image_size 768`` (L110), ``--sam2_hidden_tokens 2`` (L113),
``--sam2_batch_mode False`` (L114); the two scripts differ only in the Qwen folder and the DeepSpeed
config. ``unipixel/train/train.py`` L113-114 writes every model argument into ``config.json``
(``config.update(model_args.__dict__)``) and L171-179 adds the three tokens ``<|ref|>``, ``<|seg|>``,
``<|mem|>`` (``unipixel/constants.py`` L5-7) after Qwen's 151665, so they get ids 151665-151667, inside
both vocabularies (151936 and 152064 rows: no resize).

The SAM 2.1 sizes transcribe ``sam2/configs/sam2.1_hiera_b+.yaml`` (the file ``configs/sam2.1_hiera_b+``
names, L4-117: trunk ``embed_dim`` 112, ``num_heads`` 2; neck ``d_model`` 256, ``backbone_channel_list``
[896, 448, 224, 112]; memory attention ``d_model`` 256, ``dim_feedforward`` 2048, ``kv_in_dim`` 64, 4
layers; memory encoder ``out_dim`` 64; ``num_maskmem`` 7) with ``Hiera``'s defaults for what it leaves out
(``sam2/modeling/backbones/hieradet.py`` L186-207: stages (2, 3, 16, 3), global attention in blocks 12, 16,
20, background positional embedding 14 x 14, windows (8, 4, 14, 7), q-pooling in 3 stages with stride 2,
dims and heads doubling per stage) and the SAM heads ``SAM2Base._build_sam_heads`` hard-codes
(``sam2/modeling/sam2_base.py`` L221-238: 3 multimask outputs, a depth-2 two-way transformer with MLP 2048
and 8 heads, IoU head depth 3 and width 256).

``tiny`` is for tests: the tiny Qwen preset and a tiny SAM 2 of the same structure at a 128-pixel input. Its random
weights' default seed is 5 (``unipixel-tiny-random`` means ``unipixel-tiny-random:5``,
:attr:`litelvlm.unipixel.card.CARD.default_seeds`): for seed 0 SAM 2's object-score gate is closed on the sample images (every
mask logit -1024, every mask empty, every score 0); for 5 it is open, so the examples' numbers move with the method.
Importing this module is light (transformers is imported by :func:`sam2_config` when called).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LiteLVLMError
from ..qwen.config import SPECIAL_TOKENS
from ..qwen.config import get_preset as get_qwen_preset

#: UniPixel's extra tokens (``unipixel/constants.py`` L5-7), in the order ``train.py`` L173 adds them.
EXTRA_TOKENS: tuple[str, ...] = ("<|ref|>", "<|seg|>", "<|mem|>")
#: ``PixelQwen2_5_VLConfig.model_type`` and the saved class (``unipixel/model/qwen2_5_vl.py`` L32-33, L55).
MODEL_TYPE = "pixel_qwen2_5_vl"
ARCHITECTURE = "PixelQwen2_5_VLForConditionalGeneration"
#: ``sam2_base.py`` L18: the mask logit of frames where the object score says "absent".
NO_OBJ_SCORE = -1024.0
#: ``unipixel/utils/transforms.py`` L5-6: the SAM 2 input normalisation.
HIERA_MEAN = (0.485, 0.456, 0.406)
HIERA_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Sam2Size:
    """One SAM 2.1 architecture: the Hiera trunk, the FPN neck width, the SAM heads, the memory modules."""

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


SAM2_SIZES: dict[str, Sam2Size] = {
    "sam2.1_hiera_b+": Sam2Size(name="sam2.1_hiera_b+", embed_dim=112, num_heads=2, stages=(2, 3, 16, 3),
                                global_att_blocks=(12, 16, 20), window_pos_embed_bkg=(14, 14),
                                window_spec=(8, 4, 14, 7)),
    # tests: every code path of the trunk (windows with and without padding, q-pooling, a global block)
    # at 128 px; the SAM heads keep the widths _build_sam_heads hard-codes
    "tiny": Sam2Size(name="tiny", embed_dim=8, num_heads=1, stages=(1, 2, 3, 2), global_att_blocks=(4,),
                     window_pos_embed_bkg=(4, 4), window_spec=(8, 4, 6, 2), d_model=32, mem_dim=16, mem_layers=1,
                     mem_ff=64, num_maskmem=3, mask_downsampler_embed=32),
}


@dataclass(frozen=True)
class UniPixelPreset:
    """A UniPixel model: its Qwen2.5-VL preset, its SAM 2.1, and the ``sam2_*`` settings of ``config.json``."""

    name: str
    qwen: str                     # litelvlm.qwen.config preset
    sam2: str                     # SAM2_SIZES key
    sam2_config: str              # the --sam2_config string (hydra config name)
    image_size: int = 768         # --sam2_image_size
    hidden_tokens: int = 2        # --sam2_hidden_tokens
    batch_mode: bool = False      # --sam2_batch_mode

    def __post_init__(self) -> None:
        get_qwen_preset(self.qwen)
        if self.sam2 not in SAM2_SIZES:
            raise LiteLVLMError(f"UniPixel preset {self.name!r}: unknown SAM 2 size {self.sam2!r}")
        if self.image_size % 32:
            raise LiteLVLMError(f"UniPixel preset {self.name!r}: the SAM 2 input size {self.image_size} must be a "
                                "multiple of 32 (three q-pooling stages after a stride-4 patch embedding)")

    @property
    def sam2_size(self) -> Sam2Size:
        return SAM2_SIZES[self.sam2]

    def token_ids(self) -> dict[str, int]:
        """``ref_token_id``, ``seg_token_id``, ``mem_token_id``: the ids after the Qwen tokenizer's last token."""
        q = get_qwen_preset(self.qwen)
        first = q.special_base + len(SPECIAL_TOKENS)  # Qwen's tokenizer length (151665 for the real sizes)
        return {f"{t.strip('<|>')}_token_id": first + i for i, t in enumerate(EXTRA_TOKENS)}


PRESETS: dict[str, UniPixelPreset] = {
    # scripts/launch_3b.sh L102-114
    "3b": UniPixelPreset(name="3b", qwen="3b", sam2="sam2.1_hiera_b+", sam2_config="configs/sam2.1_hiera_b+"),
    # scripts/launch_7b.sh L102-114
    "7b": UniPixelPreset(name="7b", qwen="7b", sam2="sam2.1_hiera_b+", sam2_config="configs/sam2.1_hiera_b+"),
    "tiny": UniPixelPreset(name="tiny", qwen="tiny", sam2="tiny", sam2_config="litelvlm/sam2_tiny", image_size=128),
}
#: ``config.json``'s ``sam2_config`` (a hydra config name under UniPixel's ``sam2/``) -> the SAM 2 size it builds
SAM2_CONFIG_NAMES: dict[str, str] = {"configs/sam2.1_hiera_b+": "sam2.1_hiera_b+", "litelvlm/sam2_tiny": "tiny"}


def sam2_size_of(sam2_config_name: str) -> Sam2Size:
    """The SAM 2 size a ``config.json`` ``sam2_config`` names (an unknown one is an error listing the known ones)."""
    if sam2_config_name not in SAM2_CONFIG_NAMES:
        raise LiteLVLMError(f"sam2_config {sam2_config_name!r} is not a SAM 2 this project builds; known: "
                            + ", ".join(sorted(SAM2_CONFIG_NAMES)))
    return SAM2_SIZES[SAM2_CONFIG_NAMES[sam2_config_name]]


def get_preset(name: str | UniPixelPreset) -> UniPixelPreset:
    """The named UniPixel preset (an unknown name is an error listing the known ones)."""
    if isinstance(name, UniPixelPreset):
        return name
    if name not in PRESETS:
        raise LiteLVLMError(f"unknown UniPixel preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def sam2_config(size: str | Sam2Size, image_size: int):
    """transformers ``Sam2Config`` of a SAM 2.1 size at a square input of ``image_size`` pixels (the image
    model only: the memory modules the video path needs are not part of ``Sam2Model``)."""
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    s = SAM2_SIZES[size] if isinstance(size, str) else size
    backbone = Sam2HieraDetConfig(
        hidden_size=s.embed_dim, num_attention_heads=s.num_heads, image_size=[image_size, image_size],
        patch_kernel_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], query_stride=[2, 2],
        num_query_pool_stages=3, blocks_per_stage=list(s.stages), embed_dim_per_stage=list(s.dims),
        num_attention_heads_per_stage=list(s.heads), window_size_per_stage=list(s.window_spec),
        global_attention_blocks=list(s.global_att_blocks),
        window_positional_embedding_background_size=list(s.window_pos_embed_bkg), mlp_ratio=4.0,
        hidden_act="gelu", layer_norm_eps=1e-6)
    sizes = [[image_size // stride] * 2 for stride in (4, 8, 16)]
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=list(s.dims[::-1]),
                              backbone_feature_sizes=sizes, fpn_hidden_size=s.d_model, fpn_top_down_levels=[2, 3],
                              num_feature_levels=3)
    prompt = Sam2PromptEncoderConfig(hidden_size=s.d_model, image_size=image_size, patch_size=16,
                                     mask_input_channels=16)
    # MaskDecoder's default dynamic_multimask_via_stability=False (mask_decoder.py L28): UniPixel passes no
    # sam_mask_decoder_extra_args, and a hidden-state prompt always asks for 3 masks anyway
    decoder = Sam2MaskDecoderConfig(hidden_size=s.d_model, mlp_dim=s.decoder_mlp, num_hidden_layers=2,
                                    num_attention_heads=s.decoder_heads, attention_downsample_rate=2,
                                    num_multimask_outputs=3, iou_head_depth=3, iou_head_hidden_dim=s.iou_hidden,
                                    dynamic_multimask_via_stability=False)
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
