"""Qwen3-VL's sizes (the LVLM of Sa2VA-Qwen3-VL): ``"4b"`` (``Qwen/Qwen3-VL-4B-Instruct``) and ``"tiny"`` (the
tests'), and the ``config.json``, processor and chat-template files they write. Imports nothing heavy.

``4b`` is transcribed from the released ``Qwen/Qwen3-VL-4B-Instruct`` folder, which Sa2VA's config builds on
(bytedance/Sa2VA @9832e1a ``projects/sa2va/configs/sa2va_qwenvl3/sa2va_qwen3_4b.py`` L28): ``config.json``
(text: hidden 2560, intermediate 9728, 36 layers, 32 heads of 128, 8 key-value heads, ``rope_theta`` 5e6,
interleaved M-RoPE with ``mrope_section`` [24, 20, 20], 151936 rows, embeddings tied; vision: depth 24, hidden
1024, intermediate 4096, 16 heads, patch 16, merge 2, temporal patch 2, 2304 learned position embeddings
(a 48 x 48 grid, interpolated to each image), DeepStack from blocks 5, 11, 17, out 2560),
``preprocessor_config.json`` (``Qwen2VLImageProcessorFast``: 65536 .. 16777216 pixels, mean and std 0.5) and
``generation_config.json``. Qwen3's tokenizer has 151669 tokens: Qwen2.5's 22 special ones
(:data:`litelvlm.qwen.config.SPECIAL_TOKENS`) then ``<tool_response>``, ``</tool_response>``, ``<think>``,
``</think>`` (151665..151668).

``tiny`` keeps the structure (q/k norms, DeepStack at three LLM layers, interleaved M-RoPE, a learned position
grid) at widths a test runs in milliseconds, its special tokens from ``special_base`` 384 (the stand-in
tokenizer's, :mod:`litelvlm.qwen.tokenizer`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LiteLVLMError
from ..models.presets import named_preset
from ..qwen.config import QWEN_SPECIAL_BASE, SPECIAL_TOKENS, QwenTokenPreset, instruct_generation, patching

#: Qwen3's special tokens in id order from ``<|endoftext|>`` (Qwen2.5's, then four more)
QWEN3_SPECIAL_TOKENS: tuple[str, ...] = (*SPECIAL_TOKENS, "<tool_response>", "</tool_response>", "<think>",
                                         "</think>")
#: Qwen3-VL's image processor (``preprocessor_config.json``): mean and std 0.5
IMAGE_MEAN = IMAGE_STD = (0.5, 0.5, 0.5)
#: ``generation_config.json``'s sampling of the Instruct release
SAMPLING = {"top_k": 20, "top_p": 0.8, "repetition_penalty": 1.0, "temperature": 0.7}
#: This project's chat template for a random folder: it renders what Qwen3-VL-Instruct's template
#: (``chat_template.json`` of the release) renders for system, user and assistant turns of text and images --
#: no default system turn (Qwen2.5-VL's template adds one), ``<|vision_start|><|image_pad|><|vision_end|>``
#: per
#: image, ``<|im_start|>assistant\n`` as the generation prompt; no tools. A released folder brings its own.
CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif content['type'] == 'video' or 'video' in content %}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in content %}{{- content['text'] }}{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


@dataclass(frozen=True)
class Qwen3VLPreset(QwenTokenPreset):
    """Every size of a Qwen3-VL model: the text decoder, the vision tower with its DeepStack blocks, the
    tokens (:data:`QWEN3_SPECIAL_TOKENS`; ids, checks and JSON form: :class:`~litelvlm.qwen.config.
    QwenTokenPreset`)."""

    special_tokens = QWEN3_SPECIAL_TOKENS
    family = "Qwen3-VL"

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_hidden: int
    vision_intermediate: int
    vision_heads: int
    num_position_embeddings: int
    deepstack_visual_indexes: tuple[int, ...]
    special_base: int = QWEN_SPECIAL_BASE
    rope_theta: float = 5000000.0
    max_positions: int = 262144
    rms_norm_eps: float = 1e-6
    patch_size: int = 16
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 65536
    max_pixels: int = 16777216
    dtype: str = "bfloat16"
    max_shard_bytes: int | None = 4_000_000_000

    def __post_init__(self) -> None:
        self.check_rows_and_rope(self.vocab_size, self.mrope_section, self.head_dim)
        if max(self.deepstack_visual_indexes, default=0) >= self.vision_depth:
            raise LiteLVLMError(f"Qwen3-VL preset {self.name!r}: a DeepStack block past the tower's depth")


PRESETS: dict[str, Qwen3VLPreset] = {
    # Qwen/Qwen3-VL-4B-Instruct (module docstring)
    "4b": Qwen3VLPreset(name="4b", hidden=2560, intermediate=9728, layers=36, heads=32, kv_heads=8,
                        head_dim=128, vocab_size=151936, tie_word_embeddings=True, mrope_section=(24, 20, 20),
                        vision_depth=24, vision_hidden=1024, vision_intermediate=4096, vision_heads=16,
                        num_position_embeddings=2304, deepstack_visual_indexes=(5, 11, 17)),
    # tests: 4 LLM layers, DeepStack from 3 of 4 vision blocks (added after LLM layers 0, 1, 2, as the 4B's),
    # an 8 x 8 learned position grid, special tokens from 384
    "tiny": Qwen3VLPreset(name="tiny", hidden=64, intermediate=128, layers=4, heads=4, kv_heads=2,
                          head_dim=16, vocab_size=512, tie_word_embeddings=False, mrope_section=(2, 3, 3),
                          vision_depth=4, vision_hidden=32, vision_intermediate=64, vision_heads=2,
                          num_position_embeddings=64, deepstack_visual_indexes=(1, 2, 3), special_base=384,
                          max_positions=4096, dtype="float32", max_shard_bytes=None),
}


def get_preset(name: str | Qwen3VLPreset) -> Qwen3VLPreset:
    """The named Qwen3-VL preset (an unknown name is an error listing the known ones)."""
    return named_preset(PRESETS, name, Qwen3VLPreset, "Qwen3-VL")


def released_config(preset: str | Qwen3VLPreset) -> dict:
    """``config.json`` as ``Qwen/Qwen3-VL-4B-Instruct`` writes it (nested ``text_config`` and
    ``vision_config``)."""
    p = get_preset(preset)
    text = {
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": p.token_id("<|endoftext|>"),
        "eos_token_id": p.token_id("<|im_end|>"), "head_dim": p.head_dim, "hidden_act": "silu",
        "hidden_size": p.hidden, "initializer_range": 0.02, "intermediate_size": p.intermediate,
        "max_position_embeddings": p.max_positions, "model_type": "qwen3_vl_text",
        "num_attention_heads": p.heads, "num_hidden_layers": p.layers, "num_key_value_heads": p.kv_heads,
        "rms_norm_eps": p.rms_norm_eps,
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": list(p.mrope_section),
                         "rope_type": "default"},
        "rope_theta": p.rope_theta, "tie_word_embeddings": p.tie_word_embeddings, "use_cache": True,
        "vocab_size": p.vocab_size}
    vision = {
        "deepstack_visual_indexes": list(p.deepstack_visual_indexes), "depth": p.vision_depth,
        "hidden_act": "gelu_pytorch_tanh", "hidden_size": p.vision_hidden, "in_channels": 3,
        "initializer_range": 0.02, "intermediate_size": p.vision_intermediate, "model_type": "qwen3_vl",
        "num_heads": p.vision_heads, "num_position_embeddings": p.num_position_embeddings,
        "out_hidden_size": p.hidden, "patch_size": p.patch_size, "spatial_merge_size": p.spatial_merge_size,
        "temporal_patch_size": p.temporal_patch_size}
    return {"architectures": ["Qwen3VLForConditionalGeneration"], "model_type": "qwen3_vl",
            "image_token_id": p.token_id("<|image_pad|>"), "video_token_id": p.token_id("<|video_pad|>"),
            "vision_start_token_id": p.token_id("<|vision_start|>"),
            "vision_end_token_id": p.token_id("<|vision_end|>"), "tie_word_embeddings": p.tie_word_embeddings,
            "torch_dtype": p.dtype, "text_config": text, "vision_config": vision}


def preprocessor_config(preset: str | Qwen3VLPreset) -> dict:
    """``preprocessor_config.json`` of the release (``Qwen2VLImageProcessorFast``, patch 16)."""
    p = get_preset(preset)
    return {"size": {"longest_edge": p.max_pixels, "shortest_edge": p.min_pixels},
            **patching(p, IMAGE_MEAN, IMAGE_STD), "processor_class": "Qwen3VLProcessor",
            "image_processor_type": "Qwen2VLImageProcessorFast"}


def video_preprocessor_config(preset: str | Qwen3VLPreset) -> dict:
    """``video_preprocessor_config.json`` of the release (Sa2VA gives a video's frames as images; kept so the
    processor loads as a released folder's does)."""
    p = get_preset(preset)
    return {"size": {"longest_edge": 25165824, "shortest_edge": 4096}, **patching(p, IMAGE_MEAN, IMAGE_STD),
            "processor_class": "Qwen3VLProcessor", "video_processor_type": "Qwen3VLVideoProcessor"}


def generation_config(preset: str | Qwen3VLPreset) -> dict:
    """``generation_config.json`` of the Instruct release (eos ``<|im_end|>`` and ``<|endoftext|>``)."""
    return instruct_generation(get_preset(preset), SAMPLING)


__all__ = ["CHAT_TEMPLATE", "PRESETS", "QWEN3_SPECIAL_TOKENS", "Qwen3VLPreset", "generation_config",
           "get_preset", "preprocessor_config", "released_config", "video_preprocessor_config"]
