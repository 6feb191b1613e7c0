"""The loader of a Sa2VA-InternVL3 model string: a random preset (its cached folder, or built in memory under
``validate --no-write``) or a checkpoint folder in the released layout (:mod:`.checkpoint`), every tensor
checked: a missing or unknown name or a wrong shape is a ``LiteLVLMError`` naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from transformers import AutoTokenizer, InternVLForConditionalGeneration

from ...errors import LiteLVLMError
from ...models.model_folder import model_error, read_config
from ...models.model_spec import ModelSpec
from ...models.random_weights import default_dtype, resolve_fill, skip_init, writes_folders
from ...registry.families import family_model
from ..card import CARD
from ..checkpoint import (
    FCS_PREFIX,
    SAM_PREFIX,
    check_names,
    load_folder_part,
    load_grounding,
    read_checkpoint,
    ready,
)
from ..config import SEG_TOKEN
from ..sam2_head import Sa2VASam2, TextHiddenFcs
from .checkpoint import TEST_PRESETS, build_internvl, random_config, random_internvl_dir, random_tokenizer
from .config import ARCHITECTURE, IMG_CONTEXT, InternVLPreset, get_preset, is_internvl
from .vision import internvl_config, to_released, to_transformers

#: the model's name in the loader's errors
MODEL = "Sa2VA-InternVL3"


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


def _modules(cfg: dict, tensors: dict, where: dict, folder: Path, dtype: torch.dtype, image_token_id: int):
    """The model, ``text_hidden_fcs`` and SAM 2 of a folder's tensors (released names), checked, assigned."""
    with default_dtype(dtype), skip_init():   # every tensor is loaded below
        model = InternVLForConditionalGeneration(internvl_config(cfg, image_token_id))
    lvlm = {k: v for k, v in tensors.items() if not k.startswith((SAM_PREFIX, FCS_PREFIX))}
    shapes = to_released({k: torch.empty(v.shape, device="meta") for k, v in model.state_dict().items()})
    check_names(lvlm, {k: tuple(v.shape) for k, v in shapes.items()}, where, "InternVL3", folder, model=MODEL)
    model.load_state_dict(to_transformers(lvlm), strict=True, assign=True)
    hidden = int(cfg["llm_config"]["hidden_size"])
    return (model, *load_grounding(cfg, tensors, where, folder, dtype, hidden, MODEL))


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
    net, fcs, sam2 = ready((net.to(dtype), fcs.to(dtype), sam2.to(dtype)), device)
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
    tokenizer = load_folder_part(partial(AutoTokenizer.from_pretrained, trust_remote_code=False), "tokenizer",
                                 folder, MODEL)
    for token in (IMG_CONTEXT, SEG_TOKEN):
        if len(tokenizer.encode(token, add_special_tokens=False)) != 1:
            raise LiteLVLMError(f"the tokenizer in {folder} has no {token} token (Sa2VA-InternVL3 adds it)")
    tensors, where, dtype = read_checkpoint(folder, dtype, MODEL)
    parts = _modules(cfg, tensors, where, folder, dtype, tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
    return InternVLModules(*ready(parts, device), tokenizer, cfg)


__all__ = ["InternVLModules", "built_internvl", "internvl_folder", "load_internvl", "preset_of"]
