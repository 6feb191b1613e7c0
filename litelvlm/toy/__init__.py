"""The bundled toy: a synthetic referring-segmentation set with exact masks, and a small CLIP
trained on it by ``litelvlm toy-train`` (shipped in ``litelvlm/toy/weights``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LiteLVLMError

__all__ = ["default_model_path"]


def default_model_path() -> Path:
    """The folder of the shipped toy CLIP (a transformers ``save_pretrained`` directory)."""
    path = Path(__file__).resolve().parent / "weights"
    if not (path / "config.json").exists() or not any(path.glob("*.safetensors")):
        raise LiteLVLMError(f"the bundled toy CLIP is missing from {path} (reinstall litelvlm, or "
                            "train one with `litelvlm toy-train --out <dir>` and pass --model <dir>)")
    return path
