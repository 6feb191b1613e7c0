"""transformers' configs of a VideoGLaMM preset's LLM (Phi-3) and image tower (CLIP) (this module imports
transformers; :mod:`litelvlm.videoglamm.config` holds the presets and imports nothing heavy)."""

from __future__ import annotations

from transformers import CLIPVisionConfig, Phi3Config

from .config import VideoGLaMMPreset


def phi3_config(p: VideoGLaMMPreset):
    """transformers ``Phi3Config`` (Phi-3-mini-4k-instruct's settings: RMS eps 1e-5, rope theta 10000, SiLU,
    untied embeddings) with eager attention and the sliding window the official stack applies.

    VideoGLaMM runs transformers 4.41.0 (README L76), whose Phi-3 has no SDPA (``_supports_sdpa = False``):
    eager attention with ``_prepare_4d_causal_attention_mask(..., sliding_window=2047)``, which masks key j of
    query i when ``j <= i - 2048`` (``modeling_attn_mask_utils.py`` L165-170): 2048 visible keys. transformers
    5 keeps ``kv_idx > q_idx - sliding_window`` (``masking_utils.sliding_window_overlay``): 2047 keys for the
    same value, so the config here holds ``sliding_window + 1``. A video prompt is about 3380 tokens long, so
    the window matters: the rows after the visual tokens do not see the first ~1330 positions directly."""
    return Phi3Config(vocab_size=p.vocab_size, hidden_size=p.llm_hidden, intermediate_size=p.llm_intermediate,
                      num_hidden_layers=p.llm_layers, num_attention_heads=p.llm_heads,
                      num_key_value_heads=p.llm_heads, hidden_act="silu", rms_norm_eps=1e-5,
                      rope_theta=10000.0, max_position_embeddings=p.max_position_embeddings,
                      original_max_position_embeddings=p.max_position_embeddings,
                      sliding_window=p.sliding_window + 1, attn_implementation="eager",
                      bos_token_id=1, eos_token_id=32000 if p.vocab_size > 32000 else 2, pad_token_id=0,
                      tie_word_embeddings=False, attention_dropout=0.0, embd_pdrop=0.0, resid_pdrop=0.0)


def clip_config(p: VideoGLaMMPreset):
    """transformers ``CLIPVisionConfig`` of the image tower (OpenAI's quick_gelu, eps 1e-5; eager attention,
    the only one transformers 4.41's CLIP has)."""
    return CLIPVisionConfig(hidden_size=p.clip_width, intermediate_size=4 * p.clip_width,
                            num_hidden_layers=p.clip_layers, num_attention_heads=p.clip_heads,
                            image_size=p.clip_image_size, patch_size=p.clip_patch_size,
                            hidden_act="quick_gelu",
                            projection_dim=768, layer_norm_eps=1e-5, attn_implementation="eager")


__all__ = ["clip_config", "phi3_config"]
