"""Random-weight Sa2VA-Qwen2.5-VL and Sa2VA-Qwen3-VL checkpoints in the released folder layout, and the
loader of any such folder (the backbone's classes: :mod:`litelvlm.sa2va.qwen3_checkpoint`).

Details: docs/sa2va.md (`litelvlm.sa2va.checkpoint`).
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import safe_open

from ..errors import LiteLVLMError
from ..models.model_folder import read_config
from ..models.random_models import write_json, write_weights
from ..models.random_weights import (
    default_dtype,
    resolve_fill,
    skip_init,
    skip_init_unless_kept,
    writes_folders,
)
from ..models.shared_tokenizer import shared_tokenizer
from ..qwen.checkpoint import quiet_transformers, weight_files
from ..registry.families import family_model
from ..sam2.keys import fill_random, sam2_from_hf, sam2_to_hf, tracking_shapes
from .card import CARD
from .config import (
    ARCHITECTURE,
    MODEL_TYPE,
    TEMPLATE,
    Sa2VAPreset,
    get_preset,
    sam2_config,
    sam2_size_of,
)
from .qwen3_checkpoint import KINDS, LLMKind, kind_of_config
from .random_folder import add_extra_tokens, random_dir, random_note
from .sam2_head import Sa2VASam2, TextHiddenFcs

QWEN_PREFIX, SAM_PREFIX, FCS_PREFIX = "model.", "grounding_encoder.sam2_model.", "text_hidden_fcs."
#: the config.json keys Sa2VA adds to Qwen2.5-VL's
SA2VA_KEYS = ("template", "auto_map", "litelvlm_random")
T = TypeVar("T")


@dataclass
class Sa2VAModules:
    """A loaded Sa2VA: the Qwen2.5-VL, ``text_hidden_fcs``, SAM 2, the processor, and what config.json
    says."""

    qwen: torch.nn.Module
    fcs: TextHiddenFcs
    sam2: Sa2VASam2
    processor: object | None
    seg_token_id: int
    config: dict = field(repr=False)


def g_weight(key: str) -> str:
    """Sa2VA's name of a SAM 2 tracking tensor: its ``CXBlock`` layer scale is ``g_weight`` (``sam2.py``
    L611), where SAM 2 has ``gamma``, saved as ``weight`` (:func:`litelvlm.sam2.keys.tracking_shapes`)."""
    return re.sub(r"^(memory_encoder\.fuser\.layers\.\d+)\.weight$", r"\1.g_weight", key)


def from_g_weight(key: str) -> str:
    """The inverse of :func:`g_weight`: SAM 2's (and transformers' key map's) name of a tracking tensor."""
    return re.sub(r"^(memory_encoder\.fuser\.layers\.\d+)\.g_weight$", r"\1.weight", key)


def sam2_tracking_shapes(size) -> dict[str, tuple[int, ...]]:
    """Shapes of the SAM 2.0 tensors only the video path reads (``sam2.py`` L2358-2426: no
    ``no_obj_embed_spatial``, ``proj_tpos_enc_in_obj_ptrs`` False), under Sa2VA's names (:func:`g_weight`)."""
    return {g_weight(k): s for k, s in tracking_shapes(size, version="2.0").items()}


def build_sa2va(preset: str | Sa2VAPreset = "tiny", seed: int = 0, dtype: torch.dtype | None = None,
                device: str | torch.device = "cpu",
                fill: str = "auto") -> tuple[torch.nn.Module, TextHiddenFcs, Sa2VASam2, dict]:
    """A random Sa2VA: (Qwen2.5-VL with the resized rows, ``text_hidden_fcs``, SAM 2, the tracking tensors).
    ``fill`` (:mod:`litelvlm.models.random_weights`): ``"auto"`` fast-fills a full-size preset (SAM 2's parts
    with :func:`~litelvlm.sam2.keys.randomize`'s distributions), initialises the tiny one."""
    p = get_preset(preset)
    fast = resolve_fill(fill, p.full_size) == "fast"
    dtype = preset_dtype(p) if dtype is None else dtype
    qwen = KINDS[p.backbone].build(p.qwen_preset(), seed=seed, dtype=dtype, device=device,
                                   fill="fast" if fast else "init")
    size, llm = p.sam2_size, qwen.config.text_config.hidden_size
    with default_dtype(dtype), torch.device(device), skip_init_unless_kept(fast, device):
        fcs = TextHiddenFcs(llm, size.d_model).eval().requires_grad_(False)
        sam2 = Sa2VASam2(sam2_config(size, p.image_size), p.image_size).eval().requires_grad_(False)
    tracking = {k: torch.empty(s, dtype=dtype, device=device) for k, s in sam2_tracking_shapes(size).items()}
    parts = (fcs.state_dict(keep_vars=True), sam2.model.state_dict(keep_vars=True), tracking)
    fill_random(parts, sam2, seed, fast)
    return qwen, fcs, sam2, tracking


def sa2va_tensors(qwen, fcs: TextHiddenFcs, sam2: Sa2VASam2, tracking: dict) -> dict[str, torch.Tensor]:
    """Every tensor under the released names, in module order (``model``, ``grounding_encoder``,
    ``text_hidden_fcs``)."""
    tied = bool(qwen.config.tie_word_embeddings)
    out = {QWEN_PREFIX + k: v.detach() for k,
           v in qwen.state_dict().items() if not (tied and k == "lm_head.weight")}
    out.update({SAM_PREFIX + k: v.detach() for k, v in sam2_from_hf(sam2.model.state_dict()).items()})
    out.update({SAM_PREFIX + k: v.detach() for k, v in tracking.items()})
    out.update({FCS_PREFIX + k: v.detach() for k, v in fcs.state_dict().items()})
    return out


def sa2va_config(p: Sa2VAPreset, qwen) -> dict:
    """``config.json``: the backbone's config with Sa2VA's class, model type, template and ``auto_map``
    (with the RoPE keys of the official pin too: :func:`~.qwen3_checkpoint.pinned_rope`)."""
    cfg = qwen.config.to_dict()
    cfg.update(architectures=[ARCHITECTURE], model_type=MODEL_TYPE, template=TEMPLATE,
               auto_map={"AutoConfig": "configuration_sa2va_chat.Sa2VAChatConfigQwen",
                         "AutoModel": "modeling_sa2va_qwen.Sa2VAChatModelQwen",
                         "AutoModelForCausalLM": "modeling_sa2va_qwen.Sa2VAChatModelQwen"})
    cfg["torch_dtype"] = str(next(qwen.parameters()).dtype).replace("torch.", "")
    cfg.pop("dtype", None)
    return KINDS[p.backbone].for_pin(cfg)


def save_random_sa2va(path: str | Path, preset: str | Sa2VAPreset = "tiny", seed: int = 0,
                      device: str | torch.device = "cpu", max_shard_bytes: int | None = -1,
                      fill: str = "auto") -> Path:
    """Build a random Sa2VA of ``preset`` (``fill`` as :func:`build_sa2va`) and write it in the released
    layout (docs/sa2va.md)."""
    p = get_preset(preset)
    q = p.qwen_preset()
    fill = resolve_fill(fill, p.full_size)
    qwen, fcs, sam2, tracking = build_sa2va(p, seed=seed, device=device, fill=fill)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _write_processor_files(path, p)
    write_weights(sa2va_tensors(qwen, fcs, sam2, tracking), path,
                   q.max_shard_bytes if max_shard_bytes == -1 else max_shard_bytes)
    write_json(path / "config.json", _random_config(p, qwen, seed, device, fill))
    return path


def _write_processor_files(path: Path, p: Sa2VAPreset) -> None:
    """A random folder's tokenizer (the Qwen stand-in with Sa2VA's added tokens), generation, preprocessor and
    chat template files."""
    kind = KINDS[p.backbone]
    tok = add_extra_tokens(kind.tokenizer(p.qwen), p.token_ids(), p.vocab_size, f"Sa2VA preset {p.name!r}")
    kind.files(path, p.qwen_preset(), tok)


def _random_config(p: Sa2VAPreset, qwen, seed: int, device, fill: str) -> dict:
    """A random folder's ``config.json``: :func:`sa2va_config` with the ``litelvlm_random`` record
    (:func:`random_note`, then the LLM's pixel bounds)."""
    return random_note(sa2va_config(p, qwen), p.name, seed, fill, device, p.sam2, p.image_size,
                       min_pixels=p.min_pixels, max_pixels=p.max_pixels)


def built_sa2va(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                processor: bool = True) -> Sa2VAModules:
    """A random preset's modules built in memory (``validate --no-write``): the tensors, processor and config
    that
    :func:`load_sa2va` reads back from its written folder, with no checkpoint written (the processor's small
    files go through a temporary folder)."""
    resolved = family_model(model, CARD)   # a random preset
    p = get_preset(resolved.preset)
    fill, seed = resolve_fill("auto", p.full_size), resolved.seed
    qwen, fcs, sam2, tracking = build_sa2va(p, seed=seed, device=device, fill=fill)
    dtype = dtype or preset_dtype(p)
    cfg = json.loads(json.dumps(_random_config(p, qwen, seed, device, fill)))  # as config.json holds it
    qwen, fcs, sam2 = ready((qwen.to(dtype), fcs.to(dtype), sam2.to(dtype)), device)
    sam2.sam2_size, sam2.tracking = p.sam2_size, {k: v.to(dtype) for k, v in tracking.items()}
    proc = None
    if processor:
        with tempfile.TemporaryDirectory(prefix="sa2va-processor-") as folder:
            _write_processor_files(Path(folder), p)
            proc = _load_processor(Path(folder), KINDS[p.backbone])
    seg = int(proc.tokenizer.convert_tokens_to_ids("[SEG]")) if proc else -1
    return Sa2VAModules(qwen, fcs, sam2, proc, seg, cfg)


def random_sa2va_dir(preset: str, seed: int = 0, device: str | torch.device = "cpu") -> Path:
    """The random Sa2VA of ``preset`` and ``seed``, written once under the cache folder."""
    p = get_preset(preset)
    return random_dir(p, seed, device, save_random_sa2va, p.full_size)


def sa2va_folder(model: str, device: str | torch.device = "cpu") -> Path:
    """The folder a model string names, resolved once (:func:`litelvlm.registry.families.family_model`, which
    checks it): a random preset's cached folder (written on first use), or the Sa2VA checkpoint folder it
    names."""
    resolved = family_model(model, CARD)
    return random_sa2va_dir(resolved.preset, resolved.seed, device=device) if resolved.is_preset \
        else resolved.path


# -- loading -------------------------------------------------------------------------------------
def qwen_key(key: str) -> str:
    """A Qwen tensor's name inside the wrapper -> transformers 5's ``Qwen2_5_VLForConditionalGeneration`` name
    (the names of transformers >= 4.52 pass through; the older ``visual.*`` / ``model.*`` are renamed)."""
    if key.startswith(("model.visual.", "model.language_model.")) or key == "lm_head.weight":
        return key
    if key.startswith("visual."):
        return "model." + key
    if key.startswith("model."):
        return "model.language_model." + key[len("model."):]
    return key


def read_checkpoint(folder: Path, dtype: torch.dtype | None,
                    model: str = "Sa2VA") -> tuple[dict, dict[str, Path], torch.dtype]:
    """Every tensor of a checkpoint folder's safetensors files (``model`` names it in errors) in ``dtype``
    (None: the first tensor's), the file each came from, and that dtype; an unreadable file is one line."""
    tensors, where = {}, {}
    for f in weight_files(folder, model):
        try:
            with safe_open(str(f), framework="pt", device="cpu") as fh:
                for k in fh.keys():  # noqa: SIM118 (no __iter__)
                    t = fh.get_tensor(k)
                    tensors[k] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
                    where[k] = f
        except Exception as e:  # corrupt or truncated file
            raise LiteLVLMError(f"could not read checkpoint file {f}: {e}") from e
    dtype = dtype or next(iter(tensors.values())).dtype
    # the modules take the read tensors themselves (assign): each in the modules' dtype (no copy where it is
    # already)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}, where, dtype


def check_names(found: dict, expected: dict, where: dict, what: str, folder: Path, prefix: str = "",
                model: str = "Sa2VA") -> None:
    """Refuse ``found`` tensors (name after ``prefix`` -> tensor) that are not ``expected`` (name -> shape):
    unknown, missing, or of another shape, each named (with ``prefix``) with its file, in ``model``'s
    words."""
    unknown, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k].shape) != tuple(expected[k]))
    parts = ([f"unknown tensor(s): {', '.join(prefix + k for k in unknown[:6])}"] if unknown
             else []) + ([f"missing tensor(s): {', '.join(prefix + k for k in missing[:6])}"] if missing
                         else []) + [f"{prefix}{k} has shape {tuple(found[k].shape)} in "
                                     f"{where.get(prefix + k, Path('?')).name}, expected "
                                     f"{tuple(expected[k])}" for k in wrong[:6]]
    if parts:
        raise LiteLVLMError(f"{folder} does not have {model}'s layout ({what}): " + "; ".join(parts))


def load_grounding(cfg: dict, tensors: dict, where: dict, folder: Path, dtype: torch.dtype, llm_hidden: int,
                   model: str = "Sa2VA") -> tuple[TextHiddenFcs, Sa2VASam2]:
    """``text_hidden_fcs`` and SAM 2 (with its tracking tensors) of a folder's tensors, at the SAM 2 size and
    image size ``config.json``'s ``litelvlm_random`` names (else Hiera-L at 1024): every name and shape
    checked (:func:`check_names`), the read tensors assigned."""
    rnd = cfg.get("litelvlm_random") or {}
    size = sam2_size_of(rnd.get("sam2", "sam2_hiera_l"))
    image_size = int(rnd.get("image_size", 1024))
    with default_dtype(dtype), skip_init():   # every tensor is loaded below
        fcs = TextHiddenFcs(llm_hidden, size.d_model)
        sam2 = Sa2VASam2(sam2_config(size, image_size), image_size)
    fsd = {k[len(FCS_PREFIX):]: v for k, v in tensors.items() if k.startswith(FCS_PREFIX)}
    check_names(fsd, {k: tuple(v.shape) for k, v in fcs.state_dict().items()}, where, "text_hidden_fcs",
                folder, FCS_PREFIX, model)
    hf, rest = sam2_to_hf({k[len(SAM_PREFIX):]: v for k, v in tensors.items() if k.startswith(SAM_PREFIX)})
    check_names(rest, sam2_tracking_shapes(size), where, "SAM 2's tracking tensors", folder, SAM_PREFIX,
                model)
    check_names(hf, {k: tuple(v.shape) for k, v in sam2.model.state_dict().items()}, where, "SAM 2", folder,
                SAM_PREFIX, model)
    fcs.load_state_dict(fsd, strict=True, assign=True)
    sam2.model.load_state_dict(hf, strict=True, assign=True)
    sam2.sam2_size, sam2.tracking = size, dict(rest)
    return fcs, sam2


def load_folder_part(load: Callable[[str], T], part: str, folder: Path, model: str = "Sa2VA") -> T:
    """``load(folder)`` (a tokenizer's or processor's ``from_pretrained``, shared by the loads of the same
    folder in this process: :func:`~litelvlm.models.shared_tokenizer.shared_tokenizer`) with transformers
    quiet; a folder it cannot read is one line naming the ``part`` and the ``model``."""
    try:
        with quiet_transformers():
            return shared_tokenizer(folder, partial(load, str(folder)), f"{model} {part} {load!r}")
    except (OSError, ValueError, KeyError) as e:
        raise LiteLVLMError(f"could not load the {part} of the {model} checkpoint in {folder}: {e}") from e


def ready(modules: tuple, device: str | torch.device) -> tuple:
    """Each module on ``device``, in eval mode, without grads."""
    return tuple(m.to(device).eval().requires_grad_(False) for m in modules)


def _qwen_config(cfg: dict):
    """transformers' config of the backbone a Sa2VA ``config.json`` describes (:func:`kind_of_config`)."""
    kind = kind_of_config(cfg)
    # a deep copy: transformers completes the RoPE dicts it parses in place, and ``cfg`` stays the file's
    plain = copy.deepcopy({k: v for k, v in cfg.items() if k not in SA2VA_KEYS})
    plain.update(model_type=kind.model_type, architectures=[kind.architecture])
    return kind.config.from_dict(plain)


def preset_dtype(preset: str | Sa2VAPreset) -> torch.dtype:
    """The dtype a preset's random checkpoint is written in (its backbone preset's: bfloat16 for the released
    sizes)."""
    return getattr(torch, get_preset(preset).qwen_preset().dtype)


def load_sa2va(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
               processor: bool = True) -> Sa2VAModules:
    """The modules of a Sa2VA model string (``sa2va-*-random[:SEED]`` or a checkpoint folder); ``dtype`` None
    keeps the folder's. Every tensor is checked (docs/sa2va.md)."""
    resolved = family_model(model, CARD)
    if not writes_folders() and resolved.is_preset:  # validate --no-write
        return built_sa2va(resolved, device, dtype, processor)
    folder = sa2va_folder(resolved, device=device)
    cfg = read_config(folder) if resolved.config is None else resolved.config   # read once
    kind = kind_of_config(cfg)
    qcfg = _qwen_config(cfg)
    tensors, where, dtype = read_checkpoint(folder, dtype)
    with default_dtype(dtype), torch.device(device), skip_init():  # every tensor is loaded below
        qwen = kind.model(qcfg)
    expected = {k: tuple(v.shape) for k, v in qwen.state_dict().items()}
    qsd = {qwen_key(k[len(QWEN_PREFIX):]): v for k, v in tensors.items() if k.startswith(QWEN_PREFIX)}
    if qcfg.tie_word_embeddings:
        qsd.setdefault("lm_head.weight", qsd.get("model.language_model.embed_tokens.weight"))
    check_names(qsd, expected, where, kind.architecture, folder)
    qwen.load_state_dict(qsd, strict=True, assign=True)  # the read tensors become the weights
    if qcfg.tie_word_embeddings:
        qwen.tie_weights()
    fcs, sam2 = load_grounding(cfg, tensors, where, folder, dtype, qcfg.text_config.hidden_size)
    stray = sorted(k for k in tensors if not k.startswith((QWEN_PREFIX, SAM_PREFIX, FCS_PREFIX)))
    if stray:
        raise LiteLVLMError(
            f"{folder} does not have Sa2VA's layout: unknown tensor(s) {', '.join(stray[:6])}")
    proc = _load_processor(folder, kind) if processor else None
    seg = int(cfg.get("seg_token_id") or proc.tokenizer.convert_tokens_to_ids("[SEG]")) if proc else -1
    return Sa2VAModules(*ready((qwen, fcs, sam2), device), proc, seg, cfg)


def _load_processor(folder: Path, kind: LLMKind):
    """The backbone's processor (config.json's ``auto_map`` names remote code; the processor files are the
    backbone's own); it resizes nothing: :mod:`litelvlm.sa2va.protocol` resizes as the official code does."""
    return load_folder_part(partial(kind.processor.from_pretrained, do_resize=False, trust_remote_code=False),
                            "processor", folder)


__all__ = ["Sa2VAModules", "build_sa2va", "built_sa2va", "check_names", "load_folder_part", "load_grounding",
           "load_sa2va", "preset_dtype", "qwen_key", "random_sa2va_dir", "read_checkpoint", "ready",
           "sa2va_config", "sa2va_folder", "sa2va_tensors", "save_random_sa2va"]
