"""The CLIP paired with a Sa2VA model string of any backbone (Qwen3-VL, InternVL3): one rule for both."""

from __future__ import annotations

from ..models.model_spec import ModelSpec
from ..qwen.clip_pairing import paired_clip
from .card import CARD


def default_clip(cls, model: str | ModelSpec, config: dict | None = None) -> str:
    """A random CLIP of a random preset's size and seed (the tiny one for a small preset, the preset read from
    the string or the random folder's ``litelvlm_random``), ViT-L/14-336 for a checkpoint
    (:func:`litelvlm.qwen.clip_pairing.paired_clip`)."""
    spec = ModelSpec.of(model)
    rnd = (config or {}).get("litelvlm_random") or {}
    preset = CARD.preset(spec) or rnd.get("preset")
    if preset is None:
        return paired_clip(None)
    seed = CARD.seed(spec) if CARD.preset(spec) is not None else int(rnd.get("seed", 0))
    return paired_clip("tiny" if preset in CARD.small_presets else preset, seed)
