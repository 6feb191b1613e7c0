"""Named Qwen2.5-VL sizes (``"3b"``, ``"7b"``, ``"scaled"``, ``"tiny"``) and the ``config.json`` they write.

Details: docs/qwen.md (``litelvlm.qwen.config``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from ..errors import LiteLVLMError
from ..models.channel_stats import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from ..models.presets import named_preset

#: Qwen2.5's special tokens in id order from ``<|endoftext|>`` = 151643 (the released
#: ``tokenizer_config.json`` ``added_tokens_decoder``); a preset's ids are ``special_base + index``.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
    "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
#: Qwen2.5's ``<|endoftext|>`` id: 151643 byte-level BPE tokens come before it.
QWEN_SPECIAL_BASE = 151643
#: The released image processor (``preprocessor_config.json`` of both sizes; transformers'
#: ``Qwen2VLImageProcessor`` defaults): CLIP's mean and std, bicubic resizing.
IMAGE_MEAN, IMAGE_STD = OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
#: ``generation_config.json``'s sampling of the Qwen2.5-VL Instruct releases (near-greedy)
SAMPLING = {"repetition_penalty": 1.05, "temperature": 0.1, "top_p": 0.001, "top_k": 1}


class QwenTokenPreset:
    """What every preset on Qwen's tokenizer shares (Qwen2.5-VL's, Qwen3-VL's, Sa2VA-InternVL3's): its
    :attr:`special_tokens` (the class's, in id order from ``<|endoftext|>``) at ``special_base + index``, the
    checks of its rows and rotary sections, its JSON form. A mixin of frozen dataclasses with ``name`` and
    ``special_base`` fields."""

    #: the special tokens in id order: Qwen2.5's 22, then what the model adds after them
    special_tokens: ClassVar[tuple[str, ...]] = SPECIAL_TOKENS
    #: the family's name in error messages
    family: ClassVar[str] = "Qwen"

    def token_id(self, token: str) -> int:
        """The id of one of :attr:`special_tokens` in this preset."""
        if token not in self.special_tokens:
            raise LiteLVLMError(f"{token!r} is no special token of {self.family}")
        return self.special_base + self.special_tokens.index(token)

    def check_rows_and_rope(self, vocab_size: int, mrope_section: tuple[int, ...], head_dim: int) -> None:
        """Refuse a preset whose rotary ``mrope_section`` does not sum to ``head_dim / 2`` or whose
        ``vocab_size`` rows cannot hold its special tokens."""
        if 2 * sum(mrope_section) != head_dim:
            raise LiteLVLMError(f"{self.family} preset {self.name!r}: mrope_section {list(mrope_section)} "
                                f"must sum to head_dim / 2 = {head_dim // 2}")
        end = self.special_base + len(self.special_tokens)
        if end > vocab_size:
            raise LiteLVLMError(f"{self.family} preset {self.name!r}: {vocab_size} embedding rows cannot "
                                f"hold the special tokens at {self.special_base}..{end - 1}")

    def to_dict(self) -> dict:
        """The preset as JSON values (tuples as lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def patching(p, mean: tuple[float, ...], std: tuple[float, ...]) -> dict:
    """The patching and normalisation keys a Qwen-VL processor file holds (``preprocessor_config.json`` of
    both generations, Qwen3-VL's video processor), in the releases' order."""
    return {"patch_size": p.patch_size, "temporal_patch_size": p.temporal_patch_size,
            "merge_size": p.spatial_merge_size, "image_mean": list(mean), "image_std": list(std)}


def instruct_generation(p: QwenTokenPreset, sampling: dict) -> dict:
    """``generation_config.json`` of a Qwen-VL Instruct release: bos and pad ``<|endoftext|>``, eos
    ``<|im_end|>`` and ``<|endoftext|>``, sampling on, then the release's ``sampling``."""
    end, im_end = p.token_id("<|endoftext|>"), p.token_id("<|im_end|>")
    return {"bos_token_id": end, "pad_token_id": end, "do_sample": True, "eos_token_id": [im_end, end],
            **sampling}


@dataclass(frozen=True)
class QwenPreset(QwenTokenPreset):
    """Every size of a Qwen2.5-VL model: the text decoder, the vision tower, the tokens, the image
    processor."""

    name: str
    hidden: int                 # text hidden_size
    intermediate: int           # text intermediate_size
    layers: int                 # text num_hidden_layers
    heads: int                  # num_attention_heads
    kv_heads: int               # num_key_value_heads
    vocab_size: int             # embedding rows (>= the tokenizer's length)
    tie_word_embeddings: bool
    mrope_section: tuple[int, int, int]   # (t, h, w) halves of the rotary dims; sums to head_dim / 2
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int
    fullatt_block_indexes: tuple[int, ...]
    special_base: int = QWEN_SPECIAL_BASE
    rope_theta: float = 1000000.0
    max_positions: int = 128000
    max_window_layers: int = 70
    sliding_window: int = 32768
    rms_norm_eps: float = 1e-6
    window_size: int = 112
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    tokens_per_second: int = 2
    min_pixels: int = 3136
    max_pixels: int = 12845056
    dtype: str = "bfloat16"     # the dtype its random checkpoint is written in (the released torch_dtype)
    max_shard_bytes: int | None = 4_000_000_000   # the released folders: 2 files (3B), 5 files (7B)

    def __post_init__(self) -> None:
        self.check_rows_and_rope(self.vocab_size, self.mrope_section, self.hidden // self.heads)

    @property
    def image_token_id(self) -> int:
        return self.token_id("<|image_pad|>")


PRESETS: dict[str, QwenPreset] = {
    # Qwen/Qwen2.5-VL-3B-Instruct config.json: hidden_size 2048, intermediate_size 11008, 36 layers,
    # 16 heads, 2 KV heads, vocab_size 151936, tie_word_embeddings true, max_window_layers 70,
    # vision_config.out_hidden_size 2048; the shared values are the QwenPreset defaults above.
    "3b":
    QwenPreset(name="3b", hidden=2048, intermediate=11008, layers=36, heads=16, kv_heads=2, vocab_size=151936,
                     tie_word_embeddings=True, mrope_section=(16, 24, 24), vision_depth=32,
                     vision_hidden=1280,
                     vision_intermediate=3420, vision_heads=16, fullatt_block_indexes=(7, 15, 23, 31)),
    # Qwen/Qwen2.5-VL-7B-Instruct config.json: hidden_size 3584, intermediate_size 18944, 28 layers,
    # 28 heads, 4 KV heads, vocab_size 152064, tie_word_embeddings false, max_window_layers 28,
    # vision_config.out_hidden_size 3584 (transformers' Qwen2_5_VLVisionConfig default too).
    "7b":
    QwenPreset(name="7b", hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4, vocab_size=152064,
                     tie_word_embeddings=False, mrope_section=(16, 24, 24), vision_depth=32,
                     vision_hidden=1280,
                     vision_intermediate=3420, vision_heads=16, fullatt_block_indexes=(7, 15, 23, 31),
                     max_window_layers=28),
    # the 7B's layout (untied, the real vocabulary and ids) at widths a test writes in seconds
    "scaled":
    QwenPreset(name="scaled", hidden=64, intermediate=176, layers=4, heads=4, kv_heads=2, vocab_size=152064,
                         tie_word_embeddings=False, mrope_section=(2, 3, 3), vision_depth=8, vision_hidden=64,
                         vision_intermediate=176, vision_heads=2, fullatt_block_indexes=(1, 3, 5, 7),
                         max_window_layers=28, max_shard_bytes=8_000_000),
    # tests: special tokens at 384.. (a 384-token byte-level BPE before them), 512 rows
    "tiny":
    QwenPreset(name="tiny", hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2, vocab_size=512,
                       tie_word_embeddings=False, mrope_section=(2, 3, 3), vision_depth=4, vision_hidden=32,
                       vision_intermediate=64, vision_heads=2, fullatt_block_indexes=(1, 3), special_base=384,
                       max_positions=4096, min_pixels=56 * 56, max_pixels=112 * 112, dtype="float32",
                       max_shard_bytes=None),
}


def get_preset(name: str | QwenPreset) -> QwenPreset:
    """The named preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, QwenPreset, "Qwen2.5-VL")


def released_config(preset: str | QwenPreset) -> dict:
    """``config.json`` as the released folders write it (flat text keys, ``vision_config``,
    ``rope_scaling``)."""
    p = get_preset(preset)
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
        "attention_dropout": 0.0, "bos_token_id": p.token_id("<|endoftext|>"),
        "eos_token_id": p.token_id("<|im_end|>"), "vision_start_token_id": p.token_id("<|vision_start|>"),
        "vision_end_token_id": p.token_id("<|vision_end|>"), "vision_token_id": p.token_id("<|vision_pad|>"),
        "image_token_id": p.image_token_id, "video_token_id": p.token_id("<|video_pad|>"),
        "hidden_act": "silu", "hidden_size": p.hidden, "initializer_range": 0.02,
        "intermediate_size": p.intermediate,
        "max_position_embeddings": p.max_positions, "max_window_layers": p.max_window_layers,
        "num_attention_heads": p.heads, "num_hidden_layers": p.layers, "num_key_value_heads": p.kv_heads,
        "rms_norm_eps": p.rms_norm_eps, "rope_theta": p.rope_theta, "sliding_window": p.sliding_window,
        "tie_word_embeddings": p.tie_word_embeddings, "torch_dtype": p.dtype, "use_cache": True,
        "use_sliding_window": False, "vocab_size": p.vocab_size,
        "vision_config": {
            "depth": p.vision_depth, "hidden_act": "silu", "hidden_size": p.vision_hidden,
            "intermediate_size": p.vision_intermediate, "num_heads": p.vision_heads, "in_chans": 3,
            "out_hidden_size": p.hidden, "patch_size": p.patch_size,
            "spatial_merge_size": p.spatial_merge_size,
            "spatial_patch_size": p.patch_size, "window_size": p.window_size,
            "fullatt_block_indexes": list(p.fullatt_block_indexes), "tokens_per_second": p.tokens_per_second,
            "temporal_patch_size": p.temporal_patch_size},
        "rope_scaling": {"type": "mrope", "mrope_section": list(p.mrope_section)},
    }


def preprocessor_config(preset: str | QwenPreset) -> dict:
    """``preprocessor_config.json`` as the released folders write it (``min_pixels`` 3136 = 4 * 28 * 28,
    ``max_pixels`` 12845056 = 16384 * 28 * 28 for the real sizes)."""
    p = get_preset(preset)
    return {"min_pixels": p.min_pixels, "max_pixels": p.max_pixels, **patching(p, IMAGE_MEAN, IMAGE_STD),
            "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"}


def generation_config(preset: str | QwenPreset) -> dict:
    """``generation_config.json`` of the Instruct releases (bos/pad ``<|endoftext|>``, eos ``<|im_end|>`` and
    ``<|endoftext|>``, near-greedy sampling)."""
    return instruct_generation(get_preset(preset), SAMPLING)
