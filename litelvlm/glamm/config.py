"""Named GLaMM architectures (``"glamm-7b"``, ``"scaled"``, ``"tiny"``) as typed dataclasses, and
their transformers configs.

``glamm-7b`` is the released GLaMM-RefSeg: CLIP ViT-L/14-336 vision tower, a
Llama-2-7B-shaped LLM (d=4096, 32 layers, MLP 11008, 32 heads, vocabulary 32000 plus
GLaMM's added tokens), a 2-layer GELU MLP projector, SAM ViT-H and the 256-d ``[SEG]``
projection. ``scaled`` is the same family at CPU size, for timing ratios (the efficiency
study): the LLM keeps Llama's m/d ratio and 64-wide heads but is 8x narrower and 8x
shallower; CLIP keeps its 24x24 grid (width 128); SAM runs at 512 px. ``tiny`` keeps every
structural feature (24x24 CLIP grid = 576 visual tokens, SAM at 1024 px, the same key
layout) at widths that run on a laptop CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, SamConfig

from ..clip.random_init import ARCHS as CLIP_ARCHS
from ..clip.random_init import ClipArch
from ..errors import LiteLVLMError
from ..models.presets import named_preset

#: GLaMM's tokens added to the Llama vocabulary, in the order GLaMM adds them.
ADDED_TOKENS: tuple[str, ...] = ("<im_start>", "<im_end>", "<bbox>", "<point>", "[SEG]", "<p>", "</p>")
SEG_TOKEN = "[SEG]"


@dataclass(frozen=True)
class GlammArch:
    """Every size that defines a GLaMM model (LLM, CLIP tower, SAM, [SEG] projection)."""

    name: str
    clip: str | ClipArch           # key of litelvlm.clip.random_init.ARCHS, or the tower's sizes
    llm_hidden: int
    llm_layers: int
    llm_intermediate: int
    llm_heads: int
    llm_kv_heads: int
    vocab_size: int | None         # incl. added tokens; None: the tiny tokenizer's length
    sam_hidden: int
    sam_layers: int
    sam_heads: int
    sam_global_attn: tuple[int, ...]
    sam_window: int
    sam_patch: int
    sam_decoder_mlp: int
    sam_decoder_heads: int
    prompt_dim: int = 256          # GLaMM's out_dim: SAM's prompt width
    sam_image_size: int = 1024
    sam_mask_input_channels: int = 16
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_positions: int = 4096
    feature_layer: int = -2

    def __post_init__(self) -> None:
        if isinstance(self.clip, dict):  # read back from to_dict() (a checkpoint's litelvlm_arch)
            object.__setattr__(self, "clip", ClipArch(**self.clip))

    @property
    def clip_arch(self) -> ClipArch:
        return self.clip if isinstance(self.clip, ClipArch) else CLIP_ARCHS[self.clip]

    @property
    def num_visual_tokens(self) -> int:
        a = self.clip_arch
        return (a.image_size // a.patch_size) ** 2

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sam_global_attn"] = list(self.sam_global_attn)
        return d


#: the presets built with each module's own initialisation under ``fill="auto"`` (their weights are pinned)
TEST_PRESETS = ("tiny", "scaled")

ARCHS: dict[str, GlammArch] = {
    "glamm-7b": GlammArch(
        name="glamm-7b", clip="vit-l-14-336", llm_hidden=4096, llm_layers=32, llm_intermediate=11008,
        llm_heads=32, llm_kv_heads=32, vocab_size=32000 + len(ADDED_TOKENS),
        sam_hidden=1280, sam_layers=32, sam_heads=16, sam_global_attn=(7, 15, 23, 31), sam_window=14,
        sam_patch=16, sam_decoder_mlp=2048, sam_decoder_heads=8),
    "scaled": GlammArch(
        name="scaled", clip=ClipArch(336, 14, 128, 6, 2, 64, 2, 2, 64), llm_hidden=512, llm_layers=4,
        llm_intermediate=1376, llm_heads=8, llm_kv_heads=8, vocab_size=4000, sam_hidden=128, sam_layers=8,
        sam_heads=2, sam_global_attn=(1, 3, 5, 7), sam_window=8, sam_patch=16, sam_decoder_mlp=256,
        sam_decoder_heads=2, prompt_dim=32, sam_image_size=512, sam_mask_input_channels=4, max_positions=2048)
    , "tiny": GlammArch(
        name="tiny", clip="tiny-336", llm_hidden=64, llm_layers=4, llm_intermediate=128, llm_heads=4,
        llm_kv_heads=4, vocab_size=None, sam_hidden=32, sam_layers=2, sam_heads=2, sam_global_attn=(1,),
        sam_window=4, sam_patch=64, sam_decoder_mlp=64, sam_decoder_heads=2, prompt_dim=32,
        sam_mask_input_channels=4, max_positions=2048),
}


def get_arch(name: str | GlammArch) -> GlammArch:
    """The named architecture (an unknown name is an error listing the known ones)."""
    return named_preset(ARCHS, name, GlammArch, "GLaMM", noun="architecture")


def with_vocab(arch: GlammArch, vocab_size: int) -> GlammArch:
    """A copy of ``arch`` with the vocabulary size set (from a tokenizer or a checkpoint)."""
    return replace(arch, vocab_size=int(vocab_size))


def clip_vision_config(arch: GlammArch):
    """transformers ``CLIPVisionConfig`` of the vision tower."""
    a = arch.clip_arch
    return CLIPVisionConfig(hidden_size=a.vision_width, intermediate_size=4 * a.vision_width,
                            num_hidden_layers=a.vision_layers, num_attention_heads=a.vision_heads,
                            image_size=a.image_size, patch_size=a.patch_size, hidden_act="quick_gelu",
                            projection_dim=a.embed_dim)


def llama_config(arch: GlammArch):
    """transformers ``LlamaConfig`` of the LLM (Vicuna-7B-v1.5 conventions: bos 1, eos 2, unk/pad 0)."""
    if arch.vocab_size is None:
        raise LiteLVLMError(f"architecture {arch.name!r} needs a vocabulary size (from its tokenizer)")
    return LlamaConfig(vocab_size=arch.vocab_size, hidden_size=arch.llm_hidden,
                       intermediate_size=arch.llm_intermediate, num_hidden_layers=arch.llm_layers,
                       num_attention_heads=arch.llm_heads, num_key_value_heads=arch.llm_kv_heads,
                       rms_norm_eps=arch.rms_norm_eps, rope_theta=arch.rope_theta,
                       max_position_embeddings=arch.max_positions, bos_token_id=1, eos_token_id=2,
                       pad_token_id=0, tie_word_embeddings=False, hidden_act="silu")


def llava_config(arch: GlammArch):
    """transformers ``LlavaConfig``: CLIP tower, hidden_states[-2] without CLS, GELU MLP projector, Llama."""
    cfg = LlavaConfig(vision_config=clip_vision_config(arch), text_config=llama_config(arch),
                      vision_feature_layer=arch.feature_layer, vision_feature_select_strategy="default",
                      projector_hidden_act="gelu", image_token_index=arch.vocab_size - 1,
                      multimodal_projector_bias=True, tie_word_embeddings=False)
    return cfg


def sam_config(arch: GlammArch):
    """transformers ``SamConfig`` of the grounding encoder and mask decoder."""
    vision = dict(hidden_size=arch.sam_hidden, output_channels=arch.prompt_dim,
                  num_hidden_layers=arch.sam_layers,
                  num_attention_heads=arch.sam_heads, image_size=arch.sam_image_size,
                  patch_size=arch.sam_patch,
                  window_size=arch.sam_window, global_attn_indexes=list(arch.sam_global_attn),
                  num_pos_feats=arch.prompt_dim // 2, mlp_dim=4 * arch.sam_hidden)
    prompt = dict(hidden_size=arch.prompt_dim, image_size=arch.sam_image_size, patch_size=arch.sam_patch,
                  mask_input_channels=arch.sam_mask_input_channels)
    # layer_norm_eps: SAM's two-way blocks use nn.LayerNorm's default 1e-5 (model/SAM/modeling/transformer.py
    # lines 134-144); transformers' SamMaskDecoderConfig defaults to 1e-6 (it sets only those eight norms)
    decoder = dict(hidden_size=arch.prompt_dim, mlp_dim=arch.sam_decoder_mlp,
                   num_attention_heads=arch.sam_decoder_heads, iou_head_hidden_dim=arch.prompt_dim,
                   layer_norm_eps=1e-5)
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
