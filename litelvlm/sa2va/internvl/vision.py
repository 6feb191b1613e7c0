"""The released Sa2VA-InternVL3 module tree on transformers' ``InternVLForConditionalGeneration``: the config
and the tensor names both ways.

Details: docs/sa2va.md (`litelvlm.sa2va.internvl.vision`).
"""

from __future__ import annotations

import re

import torch
from transformers import InternVLConfig, InternVLVisionConfig, Qwen2Config

from ...errors import LiteLVLMError

#: a vision layer's prefix, released and transformers'
_VIT, _TOWER = "vision_model.encoder.layers.<i>.", "model.vision_tower.encoder.layer.<i>."
#: (released name, transformers' name) of every tensor but the fused qkv; ``<i>`` is a layer's index
_PAIRS = (
    ("vision_model.embeddings.class_embedding", "model.vision_tower.embeddings.cls_token"),
    ("vision_model.embeddings.patch_embedding.",
     "model.vision_tower.embeddings.patch_embeddings.projection."),
    ("vision_model.embeddings.position_embedding", "model.vision_tower.embeddings.position_embeddings"),
    (_VIT + "attn.proj.", _TOWER + "attention.projection_layer."),
    (_VIT + "attn.q_norm.", _TOWER + "attention.q_norm."),
    (_VIT + "attn.k_norm.", _TOWER + "attention.k_norm."),
    (_VIT + "mlp.", _TOWER + "mlp."),
    (_VIT + "norm1.", _TOWER + "layernorm_before."),
    (_VIT + "norm2.", _TOWER + "layernorm_after."),
    (_VIT + "ls1", _TOWER + "lambda_1"),
    (_VIT + "ls2", _TOWER + "lambda_2"),
    ("mlp1.0.", "model.multi_modal_projector.layer_norm."),
    ("mlp1.1.", "model.multi_modal_projector.linear_1."),
    ("mlp1.3.", "model.multi_modal_projector.linear_2."),
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
)


def _rule(src: str, dst: str) -> tuple[re.Pattern, str]:
    """A name pair as (the pattern of ``src``, the replacement making ``dst``): a prefix (ending in ``.``) or
    a whole name."""
    pattern = "^" + re.escape(src).replace("<i>", r"(\d+)") + ("" if src.endswith(".") else "$")
    return re.compile(pattern), dst.replace("<i>", r"\1")


_FORWARD = tuple(_rule(a, b) for a, b in _PAIRS)
_BACK = tuple(_rule(b, a) for a, b in _PAIRS)
_QKV = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$")
_SPLIT = re.compile(r"^model\.vision_tower\.encoder\.layer\.(\d+)\.attention\.([qkv])_proj\.(weight|bias)$")
#: released prefixes of the LVLM's tensors (the rest: ``grounding_encoder.``, ``text_hidden_fcs.``)
PREFIXES = ("vision_model.", "mlp1.", "language_model.")


def internvl_config(cfg: dict, image_token_id: int) -> InternVLConfig:
    """transformers' ``InternVLConfig`` of a Sa2VA-InternVL3 ``config.json`` (its ``vision_config`` and
    ``llm_config``); what transformers' modules do not compute is refused (``select_layer`` other than -1,
    ``ps_version`` v1, QK norm is kept)."""
    if cfg.get("select_layer", -1) != -1 or cfg.get("ps_version", "v2") != "v2":
        raise LiteLVLMError(f"Sa2VA-InternVL3 with select_layer {cfg.get('select_layer')} and ps_version "
                            f"{cfg.get('ps_version')!r}: only -1 and 'v2' (every released model's) are read")
    if cfg["llm_config"].get("architectures", ["Qwen2ForCausalLM"])[0] != "Qwen2ForCausalLM":
        raise LiteLVLMError(f"Sa2VA-InternVL3: an LLM {cfg['llm_config']['architectures']} is not read; "
                            "InternVL3's is Qwen2ForCausalLM")
    v = cfg["vision_config"]
    vision = InternVLVisionConfig(
        hidden_size=v["hidden_size"], num_hidden_layers=v["num_hidden_layers"],
        num_attention_heads=v["num_attention_heads"], intermediate_size=v["intermediate_size"],
        attention_bias=bool(v.get("qkv_bias", True)), use_qk_norm=bool(v.get("qk_normalization", False)),
        hidden_act=v.get("hidden_act", "gelu"), norm_type=v.get("norm_type", "layer_norm"),
        layer_norm_eps=v.get("layer_norm_eps", 1e-6), image_size=v.get("image_size", 448),
        patch_size=v.get("patch_size", 14), layer_scale_init_value=v.get("initializer_factor", 0.1),
        use_mean_pooling=True)
    text = Qwen2Config.from_dict({k: x for k, x in cfg["llm_config"].items()
                                  if k not in ("architectures", "auto_map", "_name_or_path")})
    text.tie_word_embeddings = False
    return InternVLConfig(vision_config=vision, text_config=text, image_token_id=int(image_token_id),
                          downsample_ratio=float(cfg.get("downsample_ratio", 0.5)),
                          projector_hidden_act="gelu",
                          vision_feature_layer=-1, vision_feature_select_strategy="default",
                          tie_word_embeddings=False)


def to_transformers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LVLM's released tensors (:data:`PREFIXES`) under transformers' names; an unknown name is kept as it
    is (the caller's check names it)."""
    out = {}
    for key, value in sd.items():
        if m := _QKV.match(key):
            for part, rows in zip("qkv", value.chunk(3, dim=0), strict=True):
                out[f"model.vision_tower.encoder.layer.{m[1]}.attention.{part}_proj.{m[2]}"] = rows
            continue
        out[_renamed(key, _FORWARD)] = value
    return out


def to_released(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' tensors of the LVLM under the released names (the inverse of :func:`to_transformers`), in
    ``sd``'s order with each fused qkv where its q part was."""
    out = {}
    for key, value in sd.items():
        if m := _SPLIT.match(key):
            if m[2] == "q":
                parts = [sd[key.replace(".q_proj.", f".{p}_proj.")] for p in "qkv"]
                out[f"vision_model.encoder.layers.{m[1]}.attn.qkv.{m[3]}"] = torch.cat(parts)
            continue
        out[_renamed(key, _BACK)] = value
    return out


def _renamed(key: str, rules) -> str:
    for pattern, new in rules:
        if pattern.match(key):
            return pattern.sub(new, key, count=1)
    return key


__all__ = ["PREFIXES", "internvl_config", "to_released", "to_transformers"]
