"""The LVLM side of a Sa2VA checkpoint by backbone: Qwen2.5-VL's or Qwen3-VL's transformers classes, a random
Qwen3-VL, and the processor files of a random Sa2VA-Qwen3-VL folder.

A released Sa2VA-Qwen3-VL folder (``ByteDance/Sa2VA-Qwen3-VL-4B``) is what
``Sa2VAChatModelQwen.save_pretrained`` writes with ``models_qwen3vl/`` (bytedance/Sa2VA @9832e1a): the module
tree of ``modeling_sa2va_qwen.py`` L41-63 -- ``model.`` + ``Qwen3VLForConditionalGeneration``'s names
(``model.model.visual.*`` with ``deepstack_merger_list.*``, ``model.model.language_model.*``,
``model.lm_head.weight``), ``grounding_encoder.sam2_model.*`` and ``text_hidden_fcs.*`` as on Qwen2.5-VL
(:mod:`litelvlm.sa2va.checkpoint`) -- and ``config.json`` is ``Sa2VAChatConfigQwen(Qwen3VLConfig).to_dict()``
(``configuration_sa2va_chat.py`` L12-34): ``model_type`` ``sa2va_chat``, ``text_config.model_type``
``qwen3_vl_text``, which tells the two backbones apart (:func:`kind_of_config`). The rows: Qwen3's 151669
tokens + the five added = 151674 (``qwen3vl.py`` ``add_special_tokens``:
``resize_token_embeddings(len(tokenizer))``).

A random folder's tokenizer is the Qwen stand-in (:mod:`litelvlm.qwen.tokenizer`) with Qwen3's four further
special tokens and this project's rendering of Qwen3-VL's chat template
(:data:`litelvlm.sa2va.qwen3_config.CHAT_TEMPLATE`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
)

from ..models.model_spec import ModelSpec
from ..models.random_models import write_json
from ..models.random_weights import default_dtype, fast_fill, init_plan, skip_init_unless_kept
from ..qwen import config as qwen25
from ..qwen.checkpoint import _write_tokenizer, build_qwen
from ..qwen.tokenizer import CHAT_TEMPLATE as QWEN25_CHAT_TEMPLATE
from ..qwen.tokenizer import build_qwen_tokenizer, stand_in_tokenizer
from ..registry.families import family_model
from . import qwen3_config as qwen3
from .card import CARD
from .config import get_preset
from .internvl import config as internvl


def pinned_rope(cfg: dict) -> dict:
    """``cfg`` (a Sa2VA ``config.json`` of either Qwen backbone as transformers 5 writes it) with the RoPE
    keys transformers 4.57 (the official pin, bytedance/Sa2VA ``pyproject.toml``) reads added to its
    ``text_config``: ``rope_scaling``, the content of ``rope_parameters`` less ``rope_theta``
    (``Qwen3VLTextRotaryEmbedding`` reads its ``rope_type`` and ``mrope_section``, Qwen2.5-VL's attention its
    ``mrope_section``: both raise on a None), and ``rope_theta`` beside it, as the release writes them;
    transformers 5 reads the same config from either form."""
    text = cfg.get("text_config")
    params = text.get("rope_parameters") if isinstance(text, dict) else None
    if isinstance(params, dict) and "rope_scaling" not in text:
        text["rope_scaling"] = {k: v for k, v in params.items() if k != "rope_theta"}
        if "rope_theta" in params:
            text["rope_theta"] = params["rope_theta"]
    return cfg


def build_qwen3(preset, seed: int = 0, dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
                fill: str = "init"):
    """A random ``Qwen3VLForConditionalGeneration`` of ``preset`` (a :class:`~.qwen3_config.Qwen3VLPreset`,
    eval mode, no grads) on ``device`` in ``dtype``; ``fill`` ``"init"`` (each module's initialisation after
    ``torch.manual_seed(seed)``) or ``"fast"`` (:func:`litelvlm.models.random_weights.fast_fill`)."""
    p = qwen3.get_preset(preset)
    config = Qwen3VLConfig.from_dict(qwen3.released_config(p))
    dtype = getattr(torch, p.dtype) if dtype is None else dtype
    dev = torch.device(device)
    if dev.type != "meta":
        torch.manual_seed(seed)
    fast = fill == "fast" and dev.type != "meta"
    with default_dtype(dtype), dev, skip_init_unless_kept(fast, dev):
        model = Qwen3VLForConditionalGeneration(config)
    if fast:
        fast_fill(init_plan(model, config.text_config.initializer_range), seed,
                  desc=f"random Qwen3-VL {p.name}: filling")
    return model.eval().requires_grad_(False)


def _build_qwen25(preset, seed: int = 0, dtype=None, device="cpu", fill: str = "init"):
    return build_qwen(preset, seed=seed, dtype=dtype, device=device, fill=fill)


def qwen3_tokenizer(preset):
    """The stand-in tokenizer of a Qwen3-VL preset: Qwen2.5's stand-in at the same ``special_base`` with
    Qwen3's four further special tokens after its 22, and :data:`~.qwen3_config.CHAT_TEMPLATE`
    (:func:`litelvlm.qwen.tokenizer.stand_in_tokenizer`)."""
    p = qwen3.get_preset(preset)
    return stand_in_tokenizer(p, qwen3.QWEN3_SPECIAL_TOKENS[len(qwen25.SPECIAL_TOKENS):], qwen3.CHAT_TEMPLATE)


def _qwen25_files(path: Path, q, tok) -> None:
    write_json(path / "generation_config.json", qwen25.generation_config(q))
    write_json(path / "preprocessor_config.json", qwen25.preprocessor_config(q))
    write_json(path / "chat_template.json", {"chat_template": QWEN25_CHAT_TEMPLATE})
    _write_tokenizer(tok, path)


def _qwen3_files(path: Path, q, tok) -> None:
    write_json(path / "generation_config.json", qwen3.generation_config(q))
    write_json(path / "preprocessor_config.json", qwen3.preprocessor_config(q))
    write_json(path / "video_preprocessor_config.json", qwen3.video_preprocessor_config(q))
    write_json(path / "chat_template.json", {"chat_template": qwen3.CHAT_TEMPLATE})
    _write_tokenizer(tok, path)


@dataclass(frozen=True)
class LLMKind:
    """One backbone's transformers classes and random-folder writers (the LVLM of a Sa2VA model)."""

    backbone: str
    model_type: str               # the plain (non-Sa2VA) config's model_type
    architecture: str
    text_model_type: str          # config.json's text_config.model_type
    config: type
    model: type
    processor: type
    build: Callable               # (preset, seed, dtype, device, fill) -> the random model
    tokenizer: Callable           # (preset) -> the stand-in tokenizer of a random folder
    files: Callable               # (folder, preset, tokenizer) -> the processor, generation, template files
    #: (config.json as transformers 5 writes it) -> the folder's config.json (:func:`pinned_rope`)
    for_pin: Callable[[dict], dict] = pinned_rope


KINDS: dict[str, LLMKind] = {
    "qwen2.5-vl": LLMKind("qwen2.5-vl", "qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", "qwen2_5_vl_text",
                          Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                          _build_qwen25, build_qwen_tokenizer, _qwen25_files),
    "qwen3-vl": LLMKind("qwen3-vl", "qwen3_vl", "Qwen3VLForConditionalGeneration", "qwen3_vl_text",
                        Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor, build_qwen3,
                        qwen3_tokenizer, _qwen3_files),
}


def kind_of_config(cfg: dict) -> LLMKind:
    """The backbone a Sa2VA ``config.json`` describes: Qwen3-VL where its ``text_config`` says
    ``qwen3_vl_text`` (``Sa2VAChatConfigQwen(Qwen3VLConfig)``), else Qwen2.5-VL (nested or flat)."""
    text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else {}
    found = (k for k in KINDS.values() if text.get("model_type") == k.text_model_type)
    return next(found, KINDS["qwen2.5-vl"])


def backbone_of(model: str | ModelSpec) -> str:
    """The backbone a Sa2VA model string is built on: its random preset's, or the one its folder's
    ``config.json`` describes (InternVL3: :func:`litelvlm.sa2va.internvl.config.is_internvl`, else
    :func:`kind_of_config`), as its one resolution found them
           (:func:`litelvlm.registry.families.family_model`)."""
    resolved = family_model(model, CARD)
    if resolved.is_preset:
        preset = resolved.preset
        return internvl.BACKBONE if preset in internvl.PRESETS else get_preset(preset).backbone
    cfg = resolved.config   # Sa2VA-InternVL3's Sa2VAChatModel, or a Qwen-VL backbone
    return internvl.BACKBONE if internvl.is_internvl(cfg) else kind_of_config(cfg).backbone


__all__ = ["KINDS", "LLMKind", "backbone_of", "build_qwen3", "kind_of_config", "pinned_rope",
           "qwen3_tokenizer"]
