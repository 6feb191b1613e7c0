"""The loader of a Sa2VA-InternVL3 model string: a random preset (its cached folder, or built in memory under
``validate --no-write``) or a checkpoint folder in the released layout (:mod:`.checkpoint`), every tensor
checked: a missing or unknown name or a wrong shape is a ``LiteLVLMError`` naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoTokenizer, InternVLForConditionalGeneration

from ...errors import LiteLVLMError
from ...models.model_folder import model_error, read_config
from ...models.model_spec import ModelSpec
from ...models.random_weights import default_dtype, resolve_fill, skip_init, writes_folders
from ...qwen.checkpoint import quiet_transformers, weight_files
from ...registry.families import family_model
from ...sam2.config import sam2_size
from ...sam2.keys import sam2_to_hf
from ..card import CARD
from ..checkpoint import FCS_PREFIX, SAM_PREFIX, sam2_tracking_shapes
from ..config import SEG_TOKEN, sam2_config
from ..sam2_head import Sa2VASam2, TextHiddenFcs
from .checkpoint import TEST_PRESETS, build_internvl, random_config, random_internvl_dir, random_tokenizer
from .config import ARCHITECTURE, IMG_CONTEXT, InternVLPreset, get_preset, is_internvl
from .vision import internvl_config, to_released, to_transformers


@dataclass
class InternVLModules:
    """A loaded Sa2VA-InternVL3: transformers' InternVL (InternViT, ``mlp1``, Qwen2), ``text_hidden_fcs``, SAM
    2, the tokenizer, and what ``config.json`` says."""

    model: torch.nn.Module
    fcs: TextHiddenFcs
    sam2: Sa2VASam2
    tokenizer: object
    config: dict = field(repr=False)


def preset_of(model: str | ModelSpec) -> InternVLPreset | None:
    """The Sa2VA-InternVL3 preset a model string builds (None: no random preset of this backbone)."""
    name = CARD.preset(ModelSpec.of(model))
    return None if name is None or not name.startswith("internvl3") else get_preset(name)


def internvl_folder(model: str | ModelSpec, device: str | torch.device = "cpu") -> Path:
    """The folder a model string names, resolved once (:func:`litelvlm.registry.families.family_model`, which
    checks it): a random preset's cached folder, or a checkpoint folder whose ``config.json`` declares
    ``Sa2VAChatModel`` with InternVL's ``vision_config`` and ``llm_config`` (else one line in the
    resolution's words)."""
    resolved = family_model(model, CARD)
    if resolved.is_preset and (p := preset_of(resolved)) is not None:
        return random_internvl_dir(p.name, resolved.seed, device=device)
    if resolved.is_preset:
        raise model_error(resolved, f"the random preset {resolved.name!r} is no Sa2VA-InternVL3 preset")
    if not is_internvl(resolved.config):
        raise model_error(resolved, f"its config.json declares no {ARCHITECTURE} with an InternVL "
                                    "vision_config and llm_config")
    return resolved.path


def _read(folder: Path, dtype: torch.dtype | None) -> tuple[dict, dict[str, Path]]:
    tensors, where = {}, {}
    for f in weight_files(folder, "Sa2VA-InternVL3"):
        try:
            with safe_open(str(f), framework="pt", device="cpu") as fh:
                for k in fh.keys():  # noqa: SIM118 (no __iter__)
                    t = fh.get_tensor(k)
                    tensors[k] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
                    where[k] = f
        except Exception as e:  # corrupt or truncated file
            raise LiteLVLMError(f"could not read checkpoint file {f}: {e}") from e
    return tensors, where


def check_names(found: dict, expected: dict, where: dict, what: str, folder: Path) -> None:
    """Refuse ``found`` tensors (name -> tensor) that are not ``expected`` (name -> shape): unknown, missing,
    or of another shape, each named with its file."""
    unknown, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k].shape) != tuple(expected[k]))
    parts = ([f"unknown tensor(s): {', '.join(unknown[:6])}"] if unknown else []) + (
        [f"missing tensor(s): {', '.join(missing[:6])}"] if missing else []) + [
        f"{k} has shape {tuple(found[k].shape)} in {where.get(k, Path('?')).name}, expected "
        f"{tuple(expected[k])}" for k in wrong[:6]]
    if parts:
        raise LiteLVLMError(f"{folder} does not have Sa2VA-InternVL3's layout ({what}): " + "; ".join(parts))


def _modules(cfg: dict, tensors: dict, where: dict, folder: Path, dtype: torch.dtype, image_token_id: int):
    """The model, ``text_hidden_fcs`` and SAM 2 of a folder's tensors (released names), checked, assigned."""
    rnd = cfg.get("litelvlm_random") or {}
    size, image_size = sam2_size(rnd.get("sam2", "sam2_hiera_l")), int(rnd.get("image_size", 1024))
    with default_dtype(dtype), skip_init():   # every tensor is loaded below
        model = InternVLForConditionalGeneration(internvl_config(cfg, image_token_id))
        fcs = TextHiddenFcs(int(cfg["llm_config"]["hidden_size"]), size.d_model)
        sam2 = Sa2VASam2(sam2_config(size, image_size), image_size)
    lvlm = {k: v for k, v in tensors.items() if not k.startswith((SAM_PREFIX, FCS_PREFIX))}
    shapes = to_released({k: torch.empty(v.shape, device="meta") for k, v in model.state_dict().items()})
    check_names(lvlm, {k: tuple(v.shape) for k, v in shapes.items()}, where, "InternVL3", folder)
    fsd = {k[len(FCS_PREFIX):]: v for k, v in tensors.items() if k.startswith(FCS_PREFIX)}
    check_names(fsd, {k: tuple(v.shape) for k, v in fcs.state_dict().items()}, where, "text_hidden_fcs",
                folder)
    hf, rest = sam2_to_hf({k[len(SAM_PREFIX):]: v for k, v in tensors.items() if k.startswith(SAM_PREFIX)})
    check_names(rest, sam2_tracking_shapes(size), where, "SAM 2's tracking tensors", folder)
    check_names(hf, {k: tuple(v.shape) for k, v in sam2.model.state_dict().items()}, where, "SAM 2", folder)
    model.load_state_dict(to_transformers(lvlm), strict=True, assign=True)
    fcs.load_state_dict(fsd, strict=True, assign=True)
    sam2.model.load_state_dict(hf, strict=True, assign=True)
    sam2.sam2_size, sam2.tracking = size, dict(rest)
    return model, fcs, sam2


def _tokenizer(folder: Path):
    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except (OSError, ValueError, KeyError) as e:
        raise LiteLVLMError(f"could not load the tokenizer of the Sa2VA-InternVL3 checkpoint in {folder}: "
                            f"{e}") from e


def _ready(modules: tuple, device) -> tuple:
    return tuple(m.to(device).eval().requires_grad_(False) for m in modules)


def built_internvl(model: str | ModelSpec, device: str | torch.device = "cpu",
                   dtype: torch.dtype | None = None) -> InternVLModules:
    """A random preset's modules built in memory (``validate --no-write``): what :func:`load_internvl` reads
    back from its written folder, with no checkpoint written."""
    spec = ModelSpec.of(model)
    p = preset_of(spec)
    fill, seed = resolve_fill("auto", p.name not in TEST_PRESETS), CARD.seed(spec)
    net, fcs, sam2, tracking = build_internvl(p, seed=seed, device=device, fill=fill)
    dtype = dtype or getattr(torch, p.dtype)
    cfg = json.loads(json.dumps(random_config(p, seed, fill, device)))   # as config.json holds it
    net, fcs, sam2 = _ready((net.to(dtype), fcs.to(dtype), sam2.to(dtype)), device)
    sam2.tracking = {k: v.to(dtype) for k, v in tracking.items()}
    return InternVLModules(net, fcs, sam2, random_tokenizer(p), cfg)


def load_internvl(model: str | ModelSpec, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None) -> InternVLModules:
    """The modules of a Sa2VA-InternVL3 model string (a random preset or a checkpoint folder); ``dtype`` None
    keeps the folder's. Every tensor is checked (module docstring)."""
    resolved = family_model(model, CARD)
    if not writes_folders() and preset_of(resolved) is not None:   # validate --no-write
        return built_internvl(resolved, device, dtype)
    folder = internvl_folder(resolved, device=device)
    cfg = read_config(folder) if resolved.config is None else resolved.config   # read once
    tokenizer = _tokenizer(folder)
    for token in (IMG_CONTEXT, SEG_TOKEN):
        if len(tokenizer.encode(token, add_special_tokens=False)) != 1:
            raise LiteLVLMError(f"the tokenizer in {folder} has no {token} token (Sa2VA-InternVL3 adds it)")
    tensors, where = _read(folder, dtype)
    dtype = dtype or next(iter(tensors.values())).dtype
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    parts = _modules(cfg, tensors, where, folder, dtype, tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
    return InternVLModules(*_ready(parts, device), tokenizer, cfg)


__all__ = ["InternVLModules", "built_internvl", "check_names", "internvl_folder", "load_internvl",
           "preset_of"]
