"""What a random Sa2VA folder holds the same way on every backbone (Qwen2.5-VL and Qwen3-VL:
:mod:`litelvlm.sa2va.checkpoint`; InternVL3: :mod:`litelvlm.sa2va.internvl.checkpoint`): Sa2VA's five tokens
added to the backbone's stand-in tokenizer, the ``litelvlm_random`` record of ``config.json``, and the cached
folder under the family's name. Each backbone keeps what differs (its tensors, its config, its processor
files).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LiteLVLMError
from ..models.random_models import random_preset_folder, random_record
from .config import EXTRA_TOKENS

if TYPE_CHECKING:
    import torch


def add_extra_tokens(tok, expected: dict[str, int], vocab_size: int, what: str):
    """``tok`` (a random folder's stand-in, either backbone) with Sa2VA's five tokens added as the official
    code adds them (``qwenvl.py`` L72, ``qwen3vl.py`` ``add_special_tokens``, ``internvl.py`` L61), checked at
    the ``expected`` ids and ``vocab_size`` rows (``what`` names the preset in the error)."""
    tok.add_tokens(list(EXTRA_TOKENS), special_tokens=True)
    ids = {t: tok.convert_tokens_to_ids(t) for t in EXTRA_TOKENS}
    if ids != expected or len(tok) != vocab_size:
        raise LiteLVLMError(f"{what}: the tokenizer gives {ids} ({len(tok)} tokens), expected {expected} "
                            f"({vocab_size})")
    return tok


def random_note(cfg: dict, name: str, seed: int, fill: str, device, sam2: str, image_size: int,
                **more) -> dict:
    """``cfg`` (a random folder's ``config.json``, either backbone) with its ``litelvlm_random`` record: the
    preset ``name``, seed, device and fill (:func:`~litelvlm.models.random_models.random_record`), the SAM 2
    size and input size that :func:`litelvlm.sa2va.checkpoint.load_grounding` reads back, then ``more``."""
    cfg["litelvlm_random"] = random_record({"preset": name}, seed, fill, device,
                                           extra={"sam2": sam2, "image_size": image_size, **more})
    return cfg


def random_dir(p, seed: int, device: str | torch.device, save: Callable[..., Path], full_size: bool) -> Path:
    """The random Sa2VA of preset ``p`` (either backbone) and ``seed``: its cached folder
    (``sa2va-<preset>-seed<seed>``), written once by ``save(folder, p, seed, device=device, fill=fill)``."""
    return random_preset_folder("sa2va", p.name, seed,
                                lambda folder, fill: save(folder, p, seed, device=device, fill=fill),
                                full_size=full_size)


__all__ = ["add_extra_tokens", "random_dir", "random_note"]
