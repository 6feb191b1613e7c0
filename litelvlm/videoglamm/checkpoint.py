"""Random-weight VideoGLaMM checkpoints in the official tensor layout, and the loader of any VideoGLaMM
folder.

Details: docs/videoglamm.md (``litelvlm.videoglamm.checkpoint``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import LiteLVLMError
from ..models.model_folder import check_model_folder, weight_files
from ..models.random_models import random_preset_folder, random_record, write_json, write_weights
from ..models.random_weights import default_dtype, fan_in_plan, fast_fill, resolve_fill, skip_init_unless_kept
from ..models.shared_tokenizer import shared_tokenizer
from ..registry.families import family_model
from ..sam2.keys import sam2_from_hf, sam2_to_hf, tracking_shapes
from .card import CARD
from .config import ARCHITECTURE, MODEL_TYPE, PRESETS, VideoGLaMMPreset, get_preset
from .folder import FOLDER
from .hf_config import phi3_config
from .internvideo2 import UNUSED
from .model import VideoGLaMM
from .tokenizer import build_phi3_tokenizer

#: official name prefix -> attribute of :class:`VideoGLaMM`
PREFIXES = (("model.vision_tower.", "internvideo."),
            ("model.image_vision_tower.vision_tower.vision_model.", "clip."),
            ("model.mm_projector.", "mm_projector."), ("model.image_mm_projector.", "image_mm_projector."),
            ("model.text_hidden_fcs.", "text_hidden_fcs."))


def sam2_tracking_shapes(p: VideoGLaMMPreset) -> dict[str, tuple[int, ...]]:
    """``visual_model.`` tensors only the memory (video-branch) path reads, SAM 2.0's set."""
    return tracking_shapes(p.sam2, version="2.0")


def _randomize(named, gen: torch.Generator) -> None:
    """N(0, 1/fan_in) matrices, N(0, 0.25) vectors, N(0, 1) random-Fourier matrices."""
    with torch.no_grad():
        for name, t in named:
            if t.is_floating_point():
                r = torch.randn(t.shape, generator=gen)
                if "positional_embedding" not in name and "gaussian_matrix" not in name:
                    r = r * (t[0].numel() ** -0.5 if t.dim() > 1 else 0.5)
                t.copy_(r.to(t.dtype))


def build_videoglamm(preset: str | VideoGLaMMPreset = "tiny", seed: int = 0, dtype: torch.dtype | None = None,
                     device: str | torch.device = "cpu",
                     fill: str = "auto") -> tuple[VideoGLaMM, dict[str, torch.Tensor]]:
    """A random VideoGLaMM and its SAM 2 tracking tensors (``visual_model.``-relative names). ``fill``
    (:mod:`litelvlm.models.random_weights`): ``"auto"`` fast-fills the full size with :func:`_randomize`'s
    distributions (created without initialisation, filled on every core), draws the tiny one tensor by
    tensor."""
    p = get_preset(preset)
    fast = resolve_fill(fill, p.name != "tiny") == "fast"
    dtype = getattr(torch, p.dtype) if dtype is None else dtype
    with default_dtype(dtype), torch.device(device), skip_init_unless_kept(fast, device):
        model = VideoGLaMM(p).eval().requires_grad_(False)
    extras = {k: torch.empty(s, dtype=dtype, device=device) for k, s in sam2_tracking_shapes(p).items()}
    if fast:
        named = [*model.state_dict(keep_vars=True).items(), *extras.items()]
        fast_fill(fan_in_plan(named), seed, desc=f"random VideoGLaMM {p.name}: filling")
    else:
        gen = torch.Generator().manual_seed(seed)
        _randomize(model.state_dict(keep_vars=True).items(), gen)
        _randomize(extras.items(), gen)
    sam = model.sam2.model
    sam.shared_image_embedding.positional_embedding.copy_(
        sam.prompt_encoder.shared_embedding.positional_embedding)
    # a plain attribute: the video branch's tensors (sam2_video.video_model)
    model.sam2_tracking = extras
    return model, extras


def videoglamm_tensors(model: VideoGLaMM, extras: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor under its official name (docs/videoglamm.md)."""
    out = {k: v.detach() for k, v in model.llm.state_dict().items()}
    for official, ours in PREFIXES:
        module = model.get_submodule(ours[:-1])
        out.update({official + k: v.detach() for k, v in module.state_dict().items()})
    out.update(
        {f"model.visual_model.{k}": v.detach() for k,
         v in sam2_from_hf(model.sam2.model.state_dict()).items()})
    out.update({f"model.visual_model.{k}": v.detach() for k, v in extras.items()})
    return out


def videoglamm_config(p: VideoGLaMMPreset) -> dict:
    """``config.json``: Phi-3's, with VideoGPT+'s multimodal keys (``arch.py`` L41-46, L59-60; builder.py) and
    VideoGLaMM's (``VideoGLaMM.py`` L95-101, ``chat.py`` L303)."""
    cfg = phi3_config(p).to_dict()
    cfg.pop("_attn_implementation_autoset", None)
    cfg.update(architectures=[ARCHITECTURE], model_type=MODEL_TYPE, sliding_window=p.sliding_window,
               mm_vision_tower="OpenGVLab/InternVideo2-Stage2_1B-224p-f4/InternVideo2-stage2_1b-224p-f4.pt",
               image_mm_vision_tower="openai/clip-vit-large-patch14-336", mm_projector_type=p.projector_type,
               image_mm_projector_type=p.projector_type, mm_hidden_size=p.internvideo.embed_dim,
               image_mm_hidden_size=p.clip_width, mm_vision_select_layer=-2, mm_vision_select_feature="patch",
               mm_use_im_start_end=False, mm_use_im_patch_token=False, use_mm_proj=True,
               seg_token_idx=p.seg_token_id, out_dim=p.out_dim, use_sam2=True, train_mask_decoder=True,
               mask_decoder_itm=False)
    return cfg


def save_random_videoglamm(path: str | Path, preset: str | VideoGLaMMPreset = "tiny", seed: int = 0,
                           device: str | torch.device = "cpu", max_shard_bytes: int | None = 4_000_000_000,
                           fill: str = "auto") -> Path:
    """Build a random VideoGLaMM of ``preset`` (``fill`` as :func:`build_videoglamm`) and write it in the
    official layout, with the stand-in tokenizer."""
    p = get_preset(preset)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fill = resolve_fill(fill, p.name != "tiny")
    model, extras = build_videoglamm(p, seed=seed, device=device, fill=fill)
    write_weights(videoglamm_tensors(model, extras), path, max_shard_bytes)
    cfg = videoglamm_config(p)
    cfg["torch_dtype"] = p.dtype
    cfg["litelvlm_random"] = random_record({"preset": p.name}, seed, fill, device)
    write_json(path / "config.json", cfg)
    build_phi3_tokenizer(p).save_pretrained(str(path))
    return path


def videoglamm_folder(model: str, device: str | torch.device = "cpu") -> Path:
    """The folder a model string names, resolved once (:func:`litelvlm.registry.families.family_model`, which
    checks it): ``videoglamm[-tiny]-random[:SEED]``'s cached folder (written on first use), or the VideoGLaMM
    checkpoint folder it names."""
    resolved = family_model(model, CARD)
    if not resolved.is_preset:
        return resolved.path
    p, seed = get_preset(resolved.preset), resolved.seed
    return random_preset_folder(
        "videoglamm", p.name, seed,
        lambda folder, fill: save_random_videoglamm(folder, p, seed, device=device, fill=fill),
        full_size=p.name != "tiny")


def _read_tensors(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    files = [f.name for f in weight_files(folder)]   # the one wording of a folder's weights
    tensors, where = {}, {}
    for f in files:
        try:
            part = load_file(str(folder / f))
        except Exception as e:  # a missing, corrupt or truncated file
            raise LiteLVLMError(f"could not read checkpoint file {folder / f}: {e}") from e
        tensors.update(part)
        where.update(dict.fromkeys(part, f))
    return tensors, where


def _ours(name: str) -> str | None:
    """Our state-dict name of an official tensor (None: SAM 2 or an unused one)."""
    if name.startswith(("model.embed_tokens.", "model.layers.", "model.norm.")) or name == "lm_head.weight":
        return "llm." + name
    for official, ours in PREFIXES:
        if name.startswith(official):
            return ours + name[len(official):]
    return None


def _is_unused(name: str) -> bool:
    rest = name.removeprefix("model.vision_tower.")
    return rest != name and (rest.startswith("vision_proj.")
                             or rest.removeprefix("vision_encoder.").startswith(UNUSED))


def _split(tensors: dict, p: VideoGLaMMPreset) -> tuple[dict, dict, dict, list[str]]:
    """(ours, SAM 2 image path (HF names), SAM 2 tracking, unknown names) of a folder's tensors."""
    ours, sam, unknown = {}, {}, []
    for k, v in tensors.items():
        if k.startswith("model.visual_model."):
            sam[k[len("model.visual_model."):]] = v
        elif _is_unused(k):
            continue
        elif (o := _ours(k)) is not None:
            ours[o] = v
        else:
            unknown.append(k)
    hf, rest = sam2_to_hf(sam)
    return ours, hf, rest, unknown


def _check(found: dict, expected: dict, what: str, folder: Path) -> None:
    missing = sorted(set(expected) - set(found))
    unknown = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k].shape) != tuple(expected[k]))
    parts = [f"{label}: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
             for label,
             names in (("missing", missing), ("unknown", unknown), ("wrong shape", wrong)) if names]
    if parts:
        raise LiteLVLMError(f"{folder} does not have VideoGLaMM's layout ({what}): " + "; ".join(parts))


def _load_tokenizer(folder: Path):
    """The folder's tokenizer: ``tokenizer.json`` when there is one (no config lookup), else
    ``AutoTokenizer``."""
    try:
        if (folder / "tokenizer.json").exists():
            return shared_tokenizer(folder, partial(PreTrainedTokenizerFast.from_pretrained, str(folder)),
                                    "PreTrainedTokenizerFast")
        return shared_tokenizer(folder, partial(AutoTokenizer.from_pretrained, str(folder), use_fast=False),
                                "AutoTokenizer slow")
    except (OSError, ValueError) as e:
        raise LiteLVLMError(f"could not load the tokenizer of {folder}: {e}") from e


def load_videoglamm(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """(:class:`VideoGLaMM`, tokenizer, config.json) of a model string; every tensor checked by name and
    shape."""
    resolved = family_model(model, CARD)
    folder = videoglamm_folder(resolved, device=device)
    # config types (the resolution's read of config.json) and tokenizer files, before any tensor
    cfg = check_model_folder(folder, FOLDER, config=resolved.config)
    name = (cfg.get("litelvlm_random") or {}).get("preset")
    p = PRESETS[name] if name in PRESETS else replace(get_preset("videoglamm"),
                                                      vocab_size=int(cfg.get("vocab_size", 32012)),
                                                        sliding_window=int(cfg.get("sliding_window", 2047)))
    tensors, where = _read_tensors(folder)
    dtype = dtype or next(iter(tensors.values())).dtype
    with default_dtype(dtype), torch.device(device):
        net = VideoGLaMM(p)
    ours, hf, rest, unknown = _split(tensors, p)
    if unknown:
        _check({k: tensors[k] for k in unknown}, {}, f"in {', '.join(sorted({where[k] for k in unknown}))}",
               folder)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.startswith("sam2.")}
    _check(ours, expected, "LLM, towers, projectors, text_hidden_fcs", folder)
    _check(hf, {k: tuple(v.shape) for k, v in net.sam2.model.state_dict().items()}, "SAM 2 image path",
           folder)
    _check(rest, sam2_tracking_shapes(p), "SAM 2 tracking", folder)
    state = {k: v.to(device, dtype) for k, v in ours.items()}
    state.update({f"sam2.model.{k}": v.to(device, dtype) for k, v in hf.items()})
    net.load_state_dict(state, strict=True)
    # the video branch's (sam2_video.py)
    net.sam2_tracking = {k: v.to(device, dtype) for k, v in rest.items()}
    net.source = str(model)
    tokenizer = _load_tokenizer(folder)
    if tokenizer.convert_tokens_to_ids("[SEG]") != cfg.get("seg_token_idx"):
        raise LiteLVLMError(f"{folder}: the tokenizer's [SEG] is not config.json's seg_token_idx")
    return net.eval().requires_grad_(False), tokenizer, cfg


__all__ = ["build_videoglamm", "load_videoglamm", "sam2_tracking_shapes", "save_random_videoglamm",
           "videoglamm_config", "videoglamm_folder", "videoglamm_tensors"]
