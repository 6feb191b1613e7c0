"""The random GLaMMs: a preset's folder in the GLaMM-RefSeg layout, written once to the cache
(:func:`random_model_dir`), or the same weights and tokenizer built in memory (:func:`built_random`,
``validate --no-write``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import LiteLVLMError
from ..models.random_models import random_preset_folder
from ..models.random_weights import resolve_fill
from .build import build_glamm
from .checkpoint_writer import save_random_glamm
from .tokenizer import build_tiny_tokenizer, load_tokenizer


def random_model_dir(base: str, seed: int, tokenizer_dir: str | None = None,
                      device: str | torch.device = "cpu") -> Path:
    """The random GLaMM of preset ``base`` in the GLaMM-RefSeg layout, written once to the cache folder
    (the full-size one in bfloat16 sharded safetensors with the slow tokenizer folder ``tokenizer_dir``, built
    on ``device``; the tiny one on the CPU, as its weights are pinned)."""
    full = base != "tiny"

    def write(folder: Path, fill: str) -> None:
        if full and tokenizer_dir is None:
            raise LiteLVLMError(f"{base}-random needs the slow GLaMM-RefSeg tokenizer folder to write its "
                                "checkpoint (e.g. --tokenizer ../shared/data/glamm_refseg_tokenizer)")
        if full:
            save_random_glamm(folder, base, seed, fmt="safetensors", dtype=torch.bfloat16,
                              tokenizer_dir=tokenizer_dir, max_shard_bytes=2 << 30, device=device, fill=fill)
        else:
            save_random_glamm(folder, base, seed, fill=fill)

    return random_preset_folder("glamm", base, seed, write, full_size=full)


def built_random(base: str, seed: int, tokenizer_dir: str | None, device, dtype: torch.dtype):
    """(model, tokenizer) of the random GLaMM of preset ``base`` built in memory (``validate --no-write``):
    the weights and tokenizer its written folder (:func:`random_model_dir`) loads back, with no checkpoint
    written (the tiny tokenizer's small files go through a temporary folder)."""
    full = base != "tiny"
    if full and tokenizer_dir is None:
        raise LiteLVLMError(f"{base}-random needs the slow GLaMM-RefSeg tokenizer folder (e.g. --tokenizer "
                            "../shared/data/glamm_refseg_tokenizer)")
    if full:
        tok = load_tokenizer(tokenizer_dir)
        model = build_glamm(base, device=device, seed=seed, vocab_size=len(tok), dtype=torch.bfloat16,
                            init_on_device=True, fill=resolve_fill("auto", True))
    else:
        with tempfile.TemporaryDirectory(prefix="glamm-tokenizer-") as folder:
            build_tiny_tokenizer(folder)
            tok = load_tokenizer(folder)
        model = build_glamm(base, seed=seed, vocab_size=len(tok), fill=resolve_fill("auto", False))
    model.ignored_checkpoint_tensors = {}
    return model.to(device, dtype).eval().requires_grad_(False), tok


__all__ = ["built_random", "random_model_dir"]
