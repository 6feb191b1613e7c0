"""Random-weight Qwen2.5-VL checkpoints written in the released layout, and the loader of any Qwen2.5-VL
folder.

A random model is built from a preset (:mod:`litelvlm.qwen.config`) with a seed, directly in its
dtype, written once under the cache folder (``random-models/qwen2.5-vl-<preset>-seed<seed>``) in the
layout of a ``Qwen/Qwen2.5-VL-*-Instruct`` folder, and loaded back through the path a user's folder
takes (``Qwen2_5_VLForConditionalGeneration.from_pretrained`` and ``AutoProcessor.from_pretrained``)::

    config.json                     flat text keys + vision_config + rope_scaling (as released)
    generation_config.json          the Instruct releases' generation settings
    model.safetensors               or model-0000i-of-0000n.safetensors + model.safetensors.index.json
    preprocessor_config.json        Qwen2VLImageProcessor: min_pixels, max_pixels, patch 14, merge 2
    chat_template.json              Qwen2.5-VL-Instruct's chat template
    tokenizer.json, tokenizer_config.json, vocab.json, merges.txt

Tensor names are the released ones (``visual.*``, ``model.*`` for the text decoder, ``lm_head.weight``,
absent when the embeddings are tied as in the 3B); transformers renames them on loading. The tokenizer
is a stand-in (:mod:`litelvlm.qwen.tokenizer`); a real checkpoint folder brings its own.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
from transformers.utils import logging as hf_logging

from ..errors import LiteLVLMError
from ..models.model_folder import (
    architecture_error,
    check_model_folder,
    declared_architectures,
    no_model_error,
    read_config,
    require_weights,
)
from ..models.model_folder import weight_files as folder_weight_files
from ..models.model_spec import RANDOM_QWENS, ModelSpec
from ..models.random_models import random_preset_folder, random_record, write_json, write_weights
from ..models.random_weights import default_dtype, fast_fill, init_plan, resolve_fill, skip_init_unless_kept
from ..runs.io import atomic_path
from .config import (
    QwenPreset,
    generation_config,
    get_preset,
    preprocessor_config,
    released_config,
)
from .hf_config import qwen_config
from .tokenizer import CHAT_TEMPLATE, build_qwen_tokenizer

ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"


def preset_dtype(preset: str | QwenPreset) -> torch.dtype:
    """The dtype a preset's random checkpoint is written in (bfloat16 for the real sizes, as released)."""
    return getattr(torch, get_preset(preset).dtype)


#: the presets built with each module's own initialisation under ``fill="auto"`` (their weights are pinned)
TEST_PRESETS = ("tiny", "scaled")


def build_qwen(preset: str | QwenPreset = "tiny", seed: int = 0, dtype: torch.dtype | None = None,
               device: str | torch.device = "cpu", fill: str = "auto"):
    """A random ``Qwen2_5_VLForConditionalGeneration`` of ``preset`` (eval mode, no grads), created directly
    on ``device`` in ``dtype`` (default: the preset's); ``device="meta"`` allocates nothing. ``fill``
    (:mod:`litelvlm.models.random_weights`): ``"auto"`` fast-fills a full-size preset, initialises a test
    preset."""
    p = get_preset(preset)
    fill = resolve_fill(fill, p.name not in TEST_PRESETS)
    config = qwen_config(p)
    dtype = preset_dtype(p) if dtype is None else dtype
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LiteLVLMError(f"device {device!r} requested but CUDA is not available")
    if dev.type != "meta":
        torch.manual_seed(seed)
    with default_dtype(
        dtype), dev, skip_init_unless_kept(fill == "fast", dev):
        model = Qwen2_5_VLForConditionalGeneration(config)
    if fill == "fast" and dev.type != "meta":
        fast_fill(init_plan(model, config.get_text_config().initializer_range), seed,
                  desc=f"random Qwen2.5-VL {p.name}: filling")
    return model.eval().requires_grad_(False)


def released_key(key: str) -> str:
    """A transformers 5 parameter name in the released checkpoints' naming (``model.visual.`` -> ``visual.``,
    ``model.language_model.`` -> ``model.``)."""
    if key.startswith("model.visual."):
        return key[len("model."):]
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    return key


def released_state_dict(model) -> dict[str, torch.Tensor]:
    """The model's tensors under the released names, in module order (no ``lm_head.weight`` when tied)."""
    tied = bool(model.config.tie_word_embeddings)
    return {released_key(k): v.detach() for k, v in model.state_dict().items()
            if not (tied and k == "lm_head.weight")}


def weight_files(folder: Path, what: str = "model") -> list[Path]:
    """The safetensors files of a checkpoint folder (``what``: whose weights, as the callers name them):
    :func:`litelvlm.models.model_folder.weight_files`, whose one wording names the folder."""
    return folder_weight_files(folder, ("safetensors",))


@contextlib.contextmanager
def quiet_transformers():
    """Within: transformers logs errors only (its load report lists the tensors a wrapper around Qwen2.5-VL
    adds as unexpected, and its processor loader warns about the wrapper's model type; the loaders check those
    themselves)."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def pinned_tokenizer_config(path: Path) -> None:
    """``tokenizer_config.json`` in ``path`` with an added-token list as the released folders and the official
    pins (transformers 4.x) hold it: ``additional_special_tokens``, where transformers 5 writes an
    ``extra_special_tokens`` list (4.53.3 reads that key as a dict and fails on a list); transformers 5 reads
    either as the same special tokens. Any other config is left as it is."""
    file = path / "tokenizer_config.json"
    cfg = json.loads(file.read_text())
    if isinstance(cfg.get("extra_special_tokens"), list):
        cfg = {("additional_special_tokens" if k == "extra_special_tokens" else k): v for k, v in cfg.items()}
        write_json(file, cfg)


def _write_tokenizer(tokenizer, path: Path) -> None:
    """``save_pretrained``'s files, plus ``vocab.json`` and ``merges.txt`` as the released folders hold them
    (the chat template lives in ``chat_template.json``, as released, not in a ``chat_template.jinja``; added
    tokens listed as the official pins read them: :func:`pinned_tokenizer_config`)."""
    tokenizer.save_pretrained(str(path))
    (path / "chat_template.jinja").unlink(missing_ok=True)
    pinned_tokenizer_config(path)
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    write_json(path / "vocab.json", model["vocab"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    with atomic_path(path / "merges.txt") as tmp:
        tmp.write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def save_qwen_checkpoint(model, tokenizer, path: str | Path, preset: str | QwenPreset,
                         extra_config: dict | None = None, max_shard_bytes: int | None = -1,
                         extra_tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model`` and ``tokenizer`` in the released Qwen2.5-VL folder layout (module docstring);
    ``max_shard_bytes`` -1: the preset's (4 GB files for the real sizes), None: one file. ``extra_tensors``
    (names not Qwen's, e.g. a model built on Qwen2.5-VL) are written after the model's, in the same files."""
    p = get_preset(preset)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sd = released_state_dict(model)
    clash = sorted(set(sd) & set(extra_tensors or {}))
    if clash:
        raise LiteLVLMError(f"extra tensors would overwrite Qwen2.5-VL tensors: {clash[:5]}")
    sd.update(extra_tensors or {})
    write_weights(sd, path, p.max_shard_bytes if max_shard_bytes == -1 else max_shard_bytes)
    cfg = released_config(p)
    cfg["torch_dtype"] = str(next(model.parameters()).dtype).replace("torch.", "")
    cfg.update(extra_config or {})
    write_json(path / "config.json", cfg)
    write_json(path / "generation_config.json", generation_config(p))
    write_json(path / "preprocessor_config.json", preprocessor_config(p))
    write_json(path / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    _write_tokenizer(tokenizer, path)
    return path


def save_random_qwen(path: str | Path, preset: str | QwenPreset = "tiny", seed: int = 0,
                     device: str | torch.device = "cpu", max_shard_bytes: int | None = -1,
                     fill: str = "auto") -> Path:
    """Build a random Qwen2.5-VL of ``preset`` (seeded, in the preset's dtype, created on ``device``, ``fill``
    as
    :func:`build_qwen`) and write it in the released layout; ``config.json`` records ``litelvlm_random``."""
    p = get_preset(preset)
    fill = resolve_fill(fill, p.name not in TEST_PRESETS)
    model = build_qwen(p, seed=seed, device=device, fill=fill)
    note = {"litelvlm_random": random_record({"preset": p.name}, seed, fill, device)}
    out = save_qwen_checkpoint(model, build_qwen_tokenizer(p), path, p, extra_config=note,
                               max_shard_bytes=max_shard_bytes)
    del model
    return out


def random_qwen_dir(preset: str, seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """The random Qwen2.5-VL of ``preset`` and ``seed``, written once under the cache folder (built on
    ``device`` the first time; later calls reuse the folder whatever their device)."""
    p = get_preset(preset)
    return random_preset_folder("qwen2.5-vl", p.name, seed,
                                lambda folder,
                                fill: save_random_qwen(folder, p, seed, device=device, fill=fill),
                                full_size=p.name not in TEST_PRESETS)


def qwen_folder(model: str, device: str | torch.device = "cpu") -> Path:
    """The checkpoint folder a model string names: a random preset's cached folder (written on first use),
    or a Qwen2.5-VL folder, checked in the families' words (:mod:`litelvlm.models.model_folder`: config.json,
    ``architectures`` declaring ``Qwen2_5_VLForConditionalGeneration``, weights)."""
    spec = ModelSpec.of(model)
    if spec.random_qwen is not None:
        return random_qwen_dir(spec.random_qwen, spec.random_seed(), device=device)
    folder = Path(spec.folder)
    if not (folder / "config.json").is_file():
        raise no_model_error(spec, RANDOM_QWENS)
    declared = declared_architectures(spec, read_config(folder))
    if ARCHITECTURE not in declared:
        raise architecture_error(spec, declared, "Qwen2.5-VL", [ARCHITECTURE])
    require_weights(spec, folder)
    return folder


def load_qwen(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """(``Qwen2_5_VLForConditionalGeneration``, ``Qwen2_5_VLProcessor``) of a model string: a random preset
    (``qwen2.5-vl-{3b,7b,tiny}-random[:SEED]``) or a checkpoint folder; ``dtype`` None keeps the folder's."""
    folder = qwen_folder(model, device=device)
    # config types, tokenizer and processor files: before transformers reads them
    check_model_folder(folder, "qwen")
    try:
        net = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            str(folder), dtype=dtype if dtype is not None else "auto", device_map=str(torch.device(device)))
        processor = AutoProcessor.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as e:
        raise LiteLVLMError(
            f"model {str(model)!r}: could not load the Qwen2.5-VL checkpoint in {folder}: {e}") from e
    return net.eval().requires_grad_(False), processor


__all__ = ["ARCHITECTURE", "build_qwen", "load_qwen", "pinned_tokenizer_config", "preset_dtype",
           "quiet_transformers", "qwen_folder", "random_qwen_dir",
           "released_key", "released_state_dict", "save_qwen_checkpoint", "save_random_qwen", "weight_files"]
