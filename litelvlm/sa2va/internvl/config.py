"""Sa2VA-InternVL3's sizes and constants: which InternViT, which Qwen2.5 LLM, which SAM 2, the added tokens,
the template, the ``config.json`` a released folder holds.

Source: bytedance/Sa2VA @ 9832e1a. Importing this module is light.

Details: docs/sa2va.md (`litelvlm.sa2va.internvl.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LiteLVLMError
from ...models.presets import named_preset
from ...qwen.config import QWEN_SPECIAL_BASE, SPECIAL_TOKENS, QwenTokenPreset
from ..config import EXTRA_TOKENS

#: the backbone's name (as :data:`litelvlm.sa2va.config.BACKBONES` names the Qwen ones)
BACKBONE = "internvl3"
#: the class ``save_pretrained`` names in ``config.json`` and its ``model_type``
#: (``modeling_sa2va_chat.py`` L89, ``configuration_sa2va_chat.py`` L22)
ARCHITECTURE = "Sa2VAChatModel"
MODEL_TYPE = "sa2va_chat"
#: ``sa2va_in30_2b.py`` L31 and ``templates.py`` L51-58 (``qwen_chat``): no system turn in ``predict_forward``
TEMPLATE = "qwen_chat"
INSTRUCTION = "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n"
STOP_WORDS = ("<|im_end|>", "<|endoftext|>")
#: ``preparing_for_generation`` L567-569
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
#: the tokens InternVL3's tokenizer adds after Qwen2.5's 22 special ones, in id order
INTERNVL_TOKENS: tuple[str, ...] = (IMG_START, IMG_END, IMG_CONTEXT, "<quad>", "</quad>", "<ref>", "</ref>",
                                    "<box>", "</box>")
#: ``preparing_for_generation`` L556-566: tiles, patch, pixel shuffle, ImageNet normalisation
TILE, PATCH, DOWNSAMPLE, MIN_TILES, MAX_TILES = 448, 14, 0.5, 1, 12
#: the frames of a video the LLM sees (``predict_forward`` L637)
LLM_FRAMES = 5


@dataclass(frozen=True)
class InternVLPreset(QwenTokenPreset):
    """A Sa2VA-InternVL3 model: its Qwen2.5 LLM, its InternViT, its SAM 2 (the image protocol's constants are
    the module's); its tokens are Qwen's special ones, InternVL's nine, Sa2VA's five (ids:
    :class:`~litelvlm.qwen.config.QwenTokenPreset`)."""

    special_tokens = (*SPECIAL_TOKENS, *INTERNVL_TOKENS, *EXTRA_TOKENS)
    family = "Sa2VA-InternVL3"

    name: str
    hidden: int                  # llm_config.hidden_size
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vision_hidden: int           # vision_config.hidden_size
    vision_intermediate: int
    vision_layers: int
    vision_heads: int
    special_base: int = QWEN_SPECIAL_BASE     # Qwen's <|endoftext|> id
    rope_theta: float = 1000000.0
    max_positions: int = 32768
    rms_norm_eps: float = 1e-6
    sam2: str = "sam2_hiera_l"
    sam_size: int = 1024         # DirectResize(1024), SAM2(image_size=1024)
    max_tiles: int = MAX_TILES
    dtype: str = "bfloat16"
    max_shard_bytes: int | None = 5_000_000_000
    hub_id: str = ""

    def __post_init__(self) -> None:
        if self.hidden % self.heads or self.vision_hidden % self.vision_heads:
            raise LiteLVLMError(f"Sa2VA-InternVL3 preset {self.name!r}: widths must divide by the heads")

    @property
    def tokens_per_tile(self) -> int:
        """256: a tile's (448 / 14)^2 patches pixel-shuffled by 0.5 (``patch_token``, L564)."""
        return int((TILE // PATCH) ** 2 * DOWNSAMPLE ** 2)

    @property
    def vocab_size(self) -> int:
        """The embedding rows: Qwen's tokens, InternVL's nine, Sa2VA's five."""
        return self.special_base + len(self.special_tokens)


PRESETS: dict[str, InternVLPreset] = {
    # ByteDance/Sa2VA-InternVL3-2B: sa2va_in30_2b.py L27 (OpenGVLab/InternVL3-2B) + modeling_sa2va_chat.py
    "internvl3-2b": InternVLPreset(name="internvl3-2b", hidden=1536, intermediate=8960, layers=28, heads=12,
                                   kv_heads=2, vision_hidden=1024, vision_intermediate=4096, vision_layers=24,
                                   vision_heads=16, hub_id="ByteDance/Sa2VA-InternVL3-2B"),
    # tests: the structure at small widths (4 LLM layers, as the other tiny LLMs the methods' layer rules
    # scale to), the tiny stand-in tokenizer's ids, the tiny SAM 2 at 128 px
    "internvl3-tiny": InternVLPreset(name="internvl3-tiny", hidden=64, intermediate=128, layers=4, heads=4,
                                     kv_heads=2, vision_hidden=32, vision_intermediate=64, vision_layers=2,
                                     vision_heads=2, special_base=384, max_positions=8192, sam2="tiny",
                                     sam_size=128, dtype="float32", max_shard_bytes=None),
}


def get_preset(name: str | InternVLPreset) -> InternVLPreset:
    """The named Sa2VA-InternVL3 preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, InternVLPreset, "Sa2VA-InternVL3")


def is_internvl(config: dict) -> bool:
    """Whether a Sa2VA ``config.json`` describes the InternVL model (``Sa2VAChatModel`` with its
    ``vision_config`` and ``llm_config``), not a Qwen-VL one (``Sa2VAChatModelQwen``)."""
    return ARCHITECTURE in (config.get("architectures") or []) and isinstance(config.get("llm_config"), dict)


def llm_config(p: InternVLPreset) -> dict:
    """``llm_config``: Qwen2.5's ``Qwen2Config`` with the resized rows (``convert_to_hf.py`` L100)."""
    return {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
            "bos_token_id": p.token_id("<|endoftext|>"), "eos_token_id": p.token_id("<|im_end|>"),
            "hidden_act": "silu", "hidden_size": p.hidden, "initializer_range": 0.02,
            "intermediate_size": p.intermediate, "max_position_embeddings": p.max_positions,
            "max_window_layers": 70, "num_attention_heads": p.heads, "num_hidden_layers": p.layers,
            "num_key_value_heads": p.kv_heads, "rms_norm_eps": p.rms_norm_eps, "rope_theta": p.rope_theta,
            "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": p.dtype, "use_cache": True,
            "use_sliding_window": False, "vocab_size": p.vocab_size}


def vision_config(p: InternVLPreset) -> dict:
    """``vision_config``: InternViT's ``InternVisionConfig`` (``configuration_intern_vit.py``)."""
    return {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "attention_dropout": 0.0,
            "drop_path_rate": 0.0, "dropout": 0.0, "hidden_act": "gelu", "hidden_size": p.vision_hidden,
            "image_size": TILE, "initializer_factor": 0.1, "initializer_range": 1e-10,
            "intermediate_size": p.vision_intermediate, "layer_norm_eps": 1e-6, "norm_type": "layer_norm",
            "num_attention_heads": p.vision_heads, "num_channels": 3, "num_hidden_layers": p.vision_layers,
            "patch_size": PATCH, "qk_normalization": False, "qkv_bias": True, "torch_dtype": p.dtype,
            "use_flash_attn": True}


def released_config(p: InternVLPreset) -> dict:
    """``config.json`` as ``convert_to_hf.py`` writes it (``Sa2VAChatConfig.to_dict()``, L104-127)."""
    return {"architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
            "auto_map": {"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfig",
                         "AutoModel": "modeling_sa2va_chat.Sa2VAChatModel",
                         "AutoModelForCausalLM": "modeling_sa2va_chat.Sa2VAChatModel"},
            "downsample_ratio": DOWNSAMPLE, "dynamic_image_size": True, "force_image_size": TILE,
            "hidden_size": p.hidden, "llm_config": llm_config(p), "max_dynamic_patch": p.max_tiles,
            "min_dynamic_patch": MIN_TILES, "pad2square": False, "ps_version": "v2", "select_layer": -1,
            "template": TEMPLATE, "tie_word_embeddings": False, "torch_dtype": p.dtype,
            "use_backbone_lora": 0, "use_llm_lora": 0, "use_thumbnail": True,
            "vision_config": vision_config(p)}


__all__ = ["ARCHITECTURE", "BACKBONE", "DOWNSAMPLE", "IMG_CONTEXT",
           "IMG_END", "IMG_START", "INSTRUCTION", "INTERNVL_TOKENS", "InternVLPreset", "LLM_FRAMES",
           "MAX_TILES", "MIN_TILES", "MODEL_TYPE", "PATCH", "PRESETS", "STOP_WORDS", "TEMPLATE", "TILE",
           "get_preset", "is_internvl", "llm_config", "released_config", "vision_config"]
