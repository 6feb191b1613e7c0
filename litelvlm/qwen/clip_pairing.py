"""The CLIP a Qwen2.5-VL-based family pairs with for the CLIP-side methods: a random CLIP of a random preset's
size and seed, or LiteLVLM's ViT-L/14-336 for a checkpoint. One rule for every such family
(:meth:`litelvlm.qwen.pipeline.QwenSam2Pipeline.default_clip`; Sa2VA's other backbones:
:mod:`litelvlm.sa2va.clip_pairing`)."""

from __future__ import annotations

from ..clip import DEFAULT_HF_MODEL
from ..models.family_card import FamilyCard
from ..models.model_spec import ModelSpec
from ..registry.resolved_model import ResolvedModel


def paired_clip(preset: str | None, seed: int = 0) -> str:
    """The CLIP paired with a model: a random CLIP of the preset's size for a random preset (``tiny``: the
    tiny CLIP; any other: ViT-L/14-336's size), seeded alike, or ViT-L/14-336
    (``openai/clip-vit-large-patch14-336``, LiteLVLM's) for a checkpoint (``preset`` None)."""
    if preset is None:
        return DEFAULT_HF_MODEL
    return f"tiny336-random:{seed}" if preset == "tiny" else f"vit-l-14-336-random:{seed}"


def random_folder_clip(config: dict | None) -> str | None:
    """The CLIP paired with a random model read from its folder: :func:`paired_clip` of the preset and seed
    its ``config.json`` records under ``litelvlm_random`` (None: not a random model's folder)."""
    rnd = (config or {}).get("litelvlm_random")
    if not isinstance(rnd, dict) or "preset" not in rnd:
        return None
    return paired_clip(str(rnd["preset"]), int(rnd.get("seed", 0)))


def family_clip(card: FamilyCard, model: str | ModelSpec, config: dict | None = None) -> str:
    """The CLIP paired with a model string of ``card``'s family (:func:`paired_clip` of its random preset); a
    folder of random weights (its ``config``, else the one its resolution read) pairs with the random CLIP of
    its preset and seed."""
    spec = ModelSpec.of(model)
    if (preset := card.preset(spec)) is not None:
        return paired_clip(preset, card.seed(spec))
    if config is None and isinstance(model, ResolvedModel):
        config = model.config
    return random_folder_clip(config) or paired_clip(None)


__all__ = ["family_clip", "paired_clip", "random_folder_clip"]
