"""Random-weight UniPixel checkpoints in the released folder layout, and the loader of any UniPixel folder.

Details: docs/unipixel.md (``litelvlm.unipixel.checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoProcessor, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from ..errors import LiteLVLMError
from ..models.model_folder import check_model_folder
from ..models.random_models import random_preset_folder, random_record
from ..models.random_weights import default_dtype, resolve_fill, skip_init, skip_init_unless_kept
from ..qwen.checkpoint import build_qwen, preset_dtype, quiet_transformers, save_qwen_checkpoint, weight_files
from ..qwen.config import get_preset as get_qwen_preset
from ..qwen.tokenizer import build_qwen_tokenizer
from ..registry.families import family_model
from ..sam2.keys import fill_random, sam2_from_hf, sam2_to_hf, tracking_shapes
from ..sam2.prompt import Sam2Prompt
from .card import CARD
from .config import (
    ARCHITECTURE,
    EXTRA_TOKENS,
    MODEL_TYPE,
    UniPixelPreset,
    get_preset,
    sam2_config,
    sam2_size_of,
)
from .folder import FOLDER
from .head import SegHead
from .keys import extra_shapes

#: the config.json keys UniPixel adds to Qwen2.5-VL's (train.py ModelArguments L21-34, token ids L177-179)
PIXEL_KEYS = ("model_name_or_path", "base_model", "conv_type", "partial_checkpoint", "sam2_config",
              "sam2_checkpoint",
              "sam2_image_size", "sam2_hidden_tokens", "sam2_batch_mode", "sam2_apply_postprocessing",
              "sam2_enable_decoder", "sam2_inference_mode", "sample_objects", "ref_token_id", "seg_token_id",
              "mem_token_id", "base_model_path", "litelvlm_random")


@dataclass
class UniPixelModules:
    """A loaded UniPixel: the LLM, the seg head, SAM 2 with the hidden-state prompt, and what config.json
    says."""

    qwen: torch.nn.Module               # transformers Qwen2_5_VLForConditionalGeneration
    seg_head: SegHead
    sam2: Sam2Prompt
    processor: object | None
    seg_token_id: int
    config: dict = field(repr=False)    # config.json as read

    @property
    def hidden_tokens(self) -> int:
        return self.seg_head.hidden_tokens


def pixel_config(preset: UniPixelPreset) -> dict:
    """The ``config.json`` entries UniPixel adds (stage 3 of scripts/launch_{3b,7b}.sh L103-115 for the model
    arguments; ``partial_checkpoint`` and the paths are the scripts' own strings)."""
    q = get_qwen_preset(preset.qwen)
    return {"architectures": [ARCHITECTURE], "model_type": MODEL_TYPE,
            "model_name_or_path": f"model_zoo/Qwen2.5-VL-{q.name.upper()}-Instruct",
            "base_model": "qwen2_5_vl",
            "conv_type": "chatml", "partial_checkpoint": "work_dirs/8p_stage1_1e,work_dirs/8p_stage2_1e",
            "sam2_config": preset.sam2_config, "sam2_checkpoint": None, "sam2_image_size": preset.image_size,
            "sam2_hidden_tokens": preset.hidden_tokens, "sam2_batch_mode": preset.batch_mode,
            "sam2_apply_postprocessing": False, "sam2_enable_decoder": True, "sam2_inference_mode": False,
            "sample_objects": 5, **preset.token_ids()}


def build_unipixel(preset: str | UniPixelPreset = "tiny", seed: int = 0, dtype: torch.dtype | None = None,
                   device: str | torch.device = "cpu",
                   fill: str = "auto") -> tuple[torch.nn.Module, SegHead, Sam2Prompt, dict]:
    """A random UniPixel: (Qwen2.5-VL, seg head, SAM 2, {name: tensor} of the tensors no module of the image
    path holds: SAM 2's tracking modules and the prompt-encoding modules, in UniPixel's names). ``fill``
    (:mod:`litelvlm.models.random_weights`): ``"auto"`` fast-fills a full-size preset, initialises the tiny
    one."""
    p = get_preset(preset)
    fast = resolve_fill(fill, p.name != "tiny") == "fast"
    dtype = preset_dtype(p.qwen) if dtype is None else dtype
    qwen = build_qwen(p.qwen, seed=seed, dtype=dtype, device=device, fill="fast" if fast else "init")
    size, llm = p.sam2_size, qwen.config.text_config.hidden_size
    with default_dtype(dtype), torch.device(device), skip_init_unless_kept(fast, device):
        head = SegHead(llm, size.d_model, p.hidden_tokens).eval().requires_grad_(False)
        sam2 = Sam2Prompt(sam2_config(size, p.image_size), p.image_size).eval().requires_grad_(False)
    merger = qwen.model.visual.merger.hidden_size
    shapes = {f"sam2.{k}": s for k, s in tracking_shapes(size).items()}
    shapes.update(extra_shapes(size.d_model, llm, merger))
    extras = {k: torch.empty(s, dtype=dtype, device=device) for k, s in shapes.items()}
    parts = (head.state_dict(keep_vars=True), sam2.model.state_dict(keep_vars=True), extras)
    fill_random(parts, sam2, seed, fast)
    return qwen, head, sam2, extras


def unipixel_tensors(head: SegHead, sam2: Sam2Prompt,
                     extras: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The non-Qwen tensors of a UniPixel checkpoint under UniPixel's names, in its module order
    (``sam2``, ``seg_head``, then ``ref_encoder`` ... ``msk_proj``)."""
    out = {f"sam2.{k}": v.detach() for k, v in sam2_from_hf(sam2.model.state_dict()).items()}
    out.update({k: v.detach() for k, v in extras.items() if k.startswith("sam2.")})
    out.update({f"seg_head.{k}": v.detach() for k, v in head.state_dict().items()})
    out.update({k: v.detach() for k, v in extras.items() if not k.startswith("sam2.")})
    return out


def save_random_unipixel(path: str | Path, preset: str | UniPixelPreset = "tiny", seed: int = 0,
                         device: str | torch.device = "cpu", max_shard_bytes: int | None = -1,
                         fill: str = "auto") -> Path:
    """Build a random UniPixel of ``preset`` (``fill`` as :func:`build_unipixel`) and write it in the released
    layout (docs/unipixel.md)."""
    p = get_preset(preset)
    fill = resolve_fill(fill, p.name != "tiny")
    qwen, head, sam2, extras = build_unipixel(p, seed=seed, device=device, fill=fill)
    tok = build_qwen_tokenizer(p.qwen)
    tok.add_special_tokens({"additional_special_tokens": list(EXTRA_TOKENS)})
    ids = {t: tok.convert_tokens_to_ids(t) for t in EXTRA_TOKENS}
    if list(ids.values()) != list(p.token_ids().values()):
        raise LiteLVLMError(f"UniPixel preset {p.name!r}: the tokenizer gives {ids}, config.json says "
                            f"{p.token_ids()}")
    cfg = pixel_config(p)
    cfg["litelvlm_random"] = random_record({"preset": p.name}, seed, fill, device)
    out = save_qwen_checkpoint(qwen, tok, path, p.qwen, extra_config=cfg, max_shard_bytes=max_shard_bytes,
                               extra_tensors=unipixel_tensors(head, sam2, extras))
    del qwen, head, sam2, extras
    return out


def random_unipixel_dir(preset: str, seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """The random UniPixel of ``preset`` and ``seed``, written once under the cache folder."""
    p = get_preset(preset)
    return random_preset_folder("unipixel", p.name, seed,
                                lambda folder,
                                fill: save_random_unipixel(folder, p, seed, device=device, fill=fill),
                                full_size=p.name != "tiny")


def unipixel_folder(model: str, device: str | torch.device = "cpu") -> Path:
    """The folder a model string names, resolved once (:func:`litelvlm.registry.families.family_model`, which
    checks it): a random preset's cached folder (written on first use), or the UniPixel folder it names."""
    resolved = family_model(model, CARD)
    return random_unipixel_dir(resolved.preset, resolved.seed, device=device) if resolved.is_preset \
        else resolved.path


# -- loading -------------------------------------------------------------------------------------
def _is_qwen(key: str) -> bool:
    return key.startswith(("visual.", "model.")) or key == "lm_head.weight"


def _read_unipixel_tensors(folder: Path, dtype: torch.dtype | None) -> tuple[dict, dict[str, Path]]:
    """({name: tensor} of every non-Qwen tensor, {name: file} of every tensor in the folder)."""
    tensors, where = {}, {}
    for f in weight_files(folder, "UniPixel"):
        try:
            with safe_open(str(f), framework="pt", device="cpu") as fh:
                for k in fh.keys():  # noqa: SIM118 (no __iter__)
                    where[k] = f
                    if not _is_qwen(k):
                        t = fh.get_tensor(k)
                        tensors[k] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
        except Exception as e:  # corrupt or truncated file
            raise LiteLVLMError(f"could not read checkpoint file {f}: {e}") from e
    return tensors, where


def _names(keys, where: dict[str, Path] | None = None, n: int = 6) -> str:
    keys = sorted(keys)
    shown = [f"{k} ({where[k].name})" if where and k in where else k for k in keys[:n]]
    return ", ".join(shown) + (f" ... ({len(keys)} in all)" if len(keys) > n else "")


def _check_shapes(found: dict, expected: dict, where: dict[str, Path], what: str, folder: Path) -> None:
    unknown = sorted(set(found) - set(expected))
    missing = sorted(set(expected) - set(found))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k].shape) != tuple(expected[k]))
    parts = []
    if unknown:
        parts.append(f"unknown tensor(s): {_names(unknown, where)}")
    if missing:
        parts.append(f"missing tensor(s): {_names(missing)}")
    if wrong:
        parts.append("wrong shape(s): "
                     + ", ".join(f"{k} {tuple(found[k].shape)} in {where[k].name}, expected "
                                 f"{tuple(expected[k])}" for k in wrong[:6]))
    if parts:
        raise LiteLVLMError(f"{folder} does not have UniPixel's layout ({what}): " + "; ".join(parts))


def _qwen_config(cfg: dict):
    """transformers ``Qwen2_5_VLConfig`` of a UniPixel ``config.json`` (UniPixel's keys left out)."""
    plain = {k: v for k, v in cfg.items() if k not in PIXEL_KEYS}
    plain.update(model_type="qwen2_5_vl", architectures=["Qwen2_5_VLForConditionalGeneration"])
    return Qwen2_5_VLConfig.from_dict(plain)


def _load_qwen(folder: Path, config, dtype, device):
    try:
        with quiet_transformers():
            qwen, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(
                str(folder), config=config, dtype=dtype if dtype is not None else "auto",
                device_map=str(torch.device(device)), output_loading_info=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise LiteLVLMError(
            f"could not load the Qwen2.5-VL part of the UniPixel checkpoint in {folder}: {e}") from e
    stray = [k for k in info.get("unexpected_keys", ()) if _is_qwen(k)]
    bad = list(info.get("missing_keys", ())) + stray + list(info.get("mismatched_keys", ()))
    if bad:
        raise LiteLVLMError(f"{folder}: the Qwen2.5-VL tensors do not match Qwen2.5-VL's layout: "
                            f"{_names(map(str, bad))}")
    return qwen.eval().requires_grad_(False)


def _head_modules(folder: Path, cfg: dict, qwen_config, dtype) -> tuple[SegHead, Sam2Prompt]:
    """The seg head and SAM 2 of a UniPixel folder, every non-Qwen tensor checked (name, shape, file)."""
    try:
        size = sam2_size_of(cfg["sam2_config"])
        image_size, tokens = int(cfg["sam2_image_size"]), int(cfg["sam2_hidden_tokens"])
    except (KeyError, TypeError, ValueError) as e:
        raise LiteLVLMError(f"{folder / 'config.json'} lacks UniPixel's setting {e}") from e
    tensors, where = _read_unipixel_tensors(folder, dtype)
    llm = qwen_config.text_config.hidden_size
    merger = qwen_config.vision_config.hidden_size * qwen_config.vision_config.spatial_merge_size ** 2
    sam2_sd = {k[len("sam2."):]: v for k, v in tensors.items() if k.startswith("sam2.")}
    hf, rest = sam2_to_hf(sam2_sd)
    _check_shapes({f"sam2.{k}": v for k, v in rest.items()},
                  {f"sam2.{k}": s for k, s in tracking_shapes(size).items()}, where, "SAM 2", folder)
    others = {k: v for k, v in tensors.items() if not k.startswith(("sam2.", "seg_head."))}
    _check_shapes(others, extra_shapes(size.d_model, llm, merger), where, "the prompt-encoding modules",
                  folder)
    head_sd = {k[len("seg_head."):]: v for k, v in tensors.items() if k.startswith("seg_head.")}
    # all loaded below
    with default_dtype(dtype or next(iter(head_sd.values()), torch.empty(0)).dtype), skip_init():
        head = SegHead(llm, size.d_model, tokens)
        sam2 = Sam2Prompt(sam2_config(size, image_size), image_size)
    _check_shapes({f"seg_head.{k}": v for k, v in head_sd.items()},
                  {f"seg_head.{k}": tuple(v.shape) for k, v in head.state_dict().items()}, where,
                  "the seg head", folder)
    expected = {f"sam2.{k}": tuple(v.shape) for k, v in sam2_from_hf(sam2.model.state_dict()).items()}
    _check_shapes({f"sam2.{k}": v for k, v in sam2_sd.items() if k not in rest}, expected, where, "SAM 2",
                  folder)
    head.load_state_dict(head_sd, strict=True)
    sam2.model.load_state_dict(hf, strict=True)
    # the video path's (litelvlm.unipixel.sam2_video), not modules
    sam2.sam2_size, sam2.tracking = size, dict(rest)
    return head.eval().requires_grad_(False), sam2.eval().requires_grad_(False)


def load_unipixel(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                  processor: bool = True) -> UniPixelModules:
    """The modules of a UniPixel model string (``unipixel-{3b,7b,tiny}-random[:SEED]`` or a checkpoint
    folder); ``dtype`` None keeps the folder's. Every tensor is checked (docs/unipixel.md), the non-Qwen ones
    first."""
    resolved = family_model(model, CARD)
    folder = unipixel_folder(resolved, device=device)
    # config types (the resolution's read of config.json), tokenizer and processor files, before any tensor
    cfg = check_model_folder(folder, FOLDER, config=resolved.config)
    if "seg_token_id" not in cfg:
        raise LiteLVLMError(f"{folder / 'config.json'} lacks UniPixel's setting 'seg_token_id'")
    qwen_config = _qwen_config(cfg)
    head, sam2 = _head_modules(folder, cfg, qwen_config, dtype)
    qwen = _load_qwen(folder, qwen_config, dtype, device)
    proc = _load_processor(folder) if processor else None
    return UniPixelModules(qwen, head.to(device), sam2.to(device), proc, int(cfg["seg_token_id"]), cfg)


def _load_processor(folder: Path):
    try:  # builder.py L21-23: use_fast=True (transformers 5: the torchvision backend), do_resize=False
        with quiet_transformers():
            return AutoProcessor.from_pretrained(str(folder), backend="torchvision", do_resize=False)
    except (OSError, ValueError, KeyError) as e:
        raise LiteLVLMError(
            f"could not load the processor of the UniPixel checkpoint in {folder}: {e}") from e


__all__ = ["PIXEL_KEYS", "UniPixelModules", "build_unipixel", "load_unipixel", "pixel_config",
           "random_unipixel_dir", "save_random_unipixel", "unipixel_folder", "unipixel_tensors"]
