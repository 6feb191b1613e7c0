"""Inputs of the figure sets' smoke results: the default tiny model and the (real or tiny) data."""

from __future__ import annotations

import os
from pathlib import Path

from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.models.model_spec import COMMAND_CLIP_MODEL

ROOT = Path(__file__).resolve().parents[3]
#: The CLIP model smoke results use unless ``--model`` says otherwise: the commands' default (random weights,
#: 24x24 grid).
SMOKE_MODEL = COMMAND_CLIP_MODEL


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository (or ``$LITELVLM_SHARED_DATA``)."""
    return Path(os.environ.get("LITELVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def coco128_dir() -> Path | None:
    """The real COCO-128 REFER-layout sample when it is present, else None."""
    d = shared_data_dir() / "coco128_refer"
    return d if (d / "refs(unc).p").exists() else None


def refer_data(out_dir: Path) -> Path:
    """COCO-128 when present, else a tiny hand-made REFER folder (three images) in ``out_dir/_data``."""
    data = coco128_dir()
    if data is None:
        data = write_tiny_refer(out_dir / "_data", sizes=((336, 448), (448, 336), (336, 336)))
    return data
