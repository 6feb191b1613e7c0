"""What every official-side script hands back: its results with the versions it ran under."""

from pathlib import Path

import PIL
import torch
import transformers


def save(out: str, cases: list, **extra) -> None:
    """Write ``{"versions", "cases", **extra}`` to ``out`` and print the versions (transformers, torch, Pillow
    and where transformers was imported from: the pinned folder)."""
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "Pillow": PIL.__version__, "transformers_path": str(Path(transformers.__file__).parent)}
    torch.save({"versions": versions, "cases": cases, **extra}, out)
    print(versions)
