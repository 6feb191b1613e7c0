"""Writing a ``GlammModel`` in the released GLaMM-RefSeg checkpoint layout (random models, conversions).

The reader, the key mapping and the layout are in :mod:`litelvlm.glamm.checkpoint`. Shards are cut by
size (``max_shard_bytes``, as ``save_pretrained`` does) and written one at a time straight from the
model's tensors, so writing a full-size model costs no second copy of it in memory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..errors import LiteLVLMError
from ..models.random_models import random_record
from ..models.random_weights import progress, resolve_fill
from ..models.safetensors_stream import save_shards
from ..runs.io import atomic_path, shard_by_size
from .build import build_glamm
from .checkpoint import model_key_to_glamm
from .config import TEST_PRESETS, get_arch
from .tokenizer import build_tiny_tokenizer, load_tokenizer

#: Files of a slow (sentencepiece) tokenizer folder, as GLaMM-RefSeg ships it.
TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def glamm_state_dict(model) -> dict[str, torch.Tensor]:
    """``GlammModel`` tensors renamed to the GLaMM-RefSeg layout (no CLIP keys; no copies)."""
    out = {}
    for k, v in model.state_dict().items():
        g = model_key_to_glamm(k)
        if g is not None:
            out[g] = v.detach().cpu().contiguous()
    return out


def shard_groups(sd: dict[str, torch.Tensor], shards: int | None = None,
                 max_shard_bytes: int | None = None) -> list[list[str]]:
    """Key groups, one per file: ``shards`` round-robin groups, or consecutive groups of at most
    ``max_shard_bytes`` (sorted keys; a larger single tensor gets its own file)."""
    keys = sorted(sd)
    if max_shard_bytes is None:
        n = max(1, shards or 1)
        return [keys[i::n] for i in range(n)] if n > 1 else [keys]
    return shard_by_size({k: sd[k].numel() * sd[k].element_size() for k in keys}, max_shard_bytes)


def _glamm_config(model, dtype: torch.dtype) -> dict:
    a = model.arch
    return {"architectures": ["GLaMMForCausalLM"], "model_type": "llava", "hidden_size": a.llm_hidden,
            "intermediate_size": a.llm_intermediate, "num_hidden_layers": a.llm_layers,
            "num_attention_heads": a.llm_heads, "num_key_value_heads": a.llm_kv_heads,
            "rms_norm_eps": a.rms_norm_eps, "rope_theta": a.rope_theta,
            "max_position_embeddings": a.max_positions, "vocab_size": a.vocab_size, "hidden_act": "silu",
            "mm_vision_tower": "openai/clip-vit-large-patch14-336",
            "mm_hidden_size": a.clip_arch.vision_width,
            "mm_vision_select_layer": a.feature_layer, "mm_use_im_start_end": True, "out_dim": a.prompt_dim,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
            "torch_dtype": str(dtype).replace("torch.", "")}


def save_glamm_checkpoint(model, tokenizer, path: str | Path, shards: int = 2, fmt: str = "bin",
                          extra_config: dict | None = None, write_arch: bool = True,
                          max_shard_bytes: int | None = None,
                          tokenizer_dir: str | Path | None = None) -> Path:
    """Write ``model`` in the GLaMM-RefSeg layout (``fmt`` ``"bin"`` or ``"safetensors"``; ``shards``
    files, or files of at most ``max_shard_bytes``). The tokenizer is ``tokenizer.save_pretrained``,
    or the files of a slow tokenizer folder ``tokenizer_dir`` copied as they are."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sd = glamm_state_dict(model)
    groups = shard_groups(sd, shards, max_shard_bytes)
    ext = "bin" if fmt == "bin" else "safetensors"
    stem = "pytorch_model" if fmt == "bin" else "model"
    names = [f"{stem}-{i + 1:05d}-of-{len(groups):05d}.{ext}" if len(groups) > 1 else f"{stem}.{ext}"
             for i in range(len(groups))]
    weight_map = {k: name for name, group in zip(names, groups) for k in group}
    with progress(sum(t.numel() * t.element_size() for t in sd.values()), f"writing {path.name}") as bar:
        if fmt != "bin":
            save_shards({name: {k: sd[k] for k in group} for name, group in zip(names, groups)}, path,
                        metadata={"format": "pt"}, bar=bar)
        for name, group in zip(names, groups) if fmt == "bin" else ():
            # into a Python file: its full disk's OSError reaches torch's error (a path's names no errno)
            with atomic_path(path / name) as tmp, open(tmp, "wb") as f:
                torch.save({k: sd[k] for k in group}, f)
            bar.update(sum(sd[k].numel() * sd[k].element_size() for k in group))
    if len(groups) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
                 "weight_map": dict(sorted(weight_map.items()))}
        with atomic_path(path / f"{stem}.{ext}.index.json") as tmp:
            tmp.write_text(json.dumps(index, indent=2))
    cfg = _glamm_config(model, next(iter(sd.values())).dtype)
    if write_arch:
        cfg["litelvlm_arch"] = model.arch.to_dict()
    cfg.update(extra_config or {})
    with atomic_path(path / "config.json") as tmp:
        tmp.write_text(json.dumps(cfg, indent=2))
    if tokenizer_dir is None:
        tokenizer.save_pretrained(str(path))
    else:
        _copy_tokenizer(Path(tokenizer_dir), path)
    return path


def _copy_tokenizer(src: Path, dst: Path) -> None:
    missing = [f for f in TOKENIZER_FILES[:2] if not (src / f).is_file()]
    if missing:
        raise LiteLVLMError(f"tokenizer folder {src} lacks {', '.join(missing)} (a slow Llama tokenizer "
                            "folder such as GLaMM-RefSeg's is needed)")
    for f in TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copyfile(src / f, dst / f)


def save_random_glamm(path: str | Path, arch: str = "tiny", seed: int = 0, shards: int = 2, fmt: str = "bin",
                      dtype: torch.dtype = torch.float32, tokenizer_dir: str | Path | None = None,
                      max_shard_bytes: int | None = None, device: str | torch.device = "cpu",
                      fill: str = "auto") -> Path:
    """Build a random GLaMM of ``arch`` (on ``device``) and write it in the GLaMM-RefSeg layout.

    Without ``tokenizer_dir`` the tiny offline tokenizer is used (its length sets the vocabulary) and the
    arch is recorded in ``config.json``. With a real slow tokenizer folder (e.g. GLaMM-RefSeg's), the
    model is built directly in ``dtype`` (no float32 copy: the full size fits in memory) and the config
    is the plain GLaMM one, so the folder loads exactly like a released checkpoint. Either way
    ``config.json`` records ``litelvlm_random`` (the seed): these are random weights. ``fill``: as
    :func:`~litelvlm.glamm.build.build_glamm` (recorded in ``litelvlm_random`` when ``"fast"``).
    """
    a = get_arch(arch)
    fill = resolve_fill(fill, a.name not in TEST_PRESETS)
    random_note = {"litelvlm_random": random_record({"arch": a.name}, seed, fill)}
    if tokenizer_dir is None:
        tok = build_tiny_tokenizer()
        model = build_glamm(a, device=device, seed=seed, vocab_size=len(tok), dtype=dtype, fill=fill)
        return save_glamm_checkpoint(model, tok, path, shards=shards, fmt=fmt, extra_config=random_note,
                                     max_shard_bytes=max_shard_bytes)
    tok = load_tokenizer(tokenizer_dir)
    vocab = a.vocab_size if a.vocab_size is not None else len(tok)
    if len(tok) > vocab:
        raise LiteLVLMError(f"the tokenizer in {tokenizer_dir} has {len(tok)} tokens; arch {a.name!r} "
                            f"embeds only {vocab}")
    model = build_glamm(a, device=device, seed=seed, vocab_size=vocab, dtype=dtype, init_on_device=True,
                        fill=fill)
    out = save_glamm_checkpoint(model, tok, path, shards=shards, fmt=fmt, extra_config=random_note,
                                write_arch=a.name != "glamm-7b", max_shard_bytes=max_shard_bytes,
                                tokenizer_dir=tokenizer_dir)
    del model
    return out


__all__ = ["TOKENIZER_FILES", "glamm_state_dict", "save_glamm_checkpoint", "save_random_glamm",
           "shard_groups"]
