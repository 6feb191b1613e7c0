"""Command-line options shared by the studies that run the GLaMM pipeline (``eval-grounding``, ``importance``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from litelvlm.cli_args import arg
from litelvlm.errors import LiteLVLMError

#: ``--dtype`` names
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class GlammDataArgs:
    """The model (a GLaMM-RefSeg folder with its CLIP and SAM sources) and the REFER data a study reads."""

    refer_dir: str = arg(help="REFER folder (refs(<split_by>).p, instances.json), e.g. ../shared/data/coco128_refer",
                         required=True)
    out: str = arg(help="output folder (result tables, summary.csv, config.json; resumable)", required=True)
    model: str = arg("tiny-random:0", help="tiny-random[:SEED] or a GLaMM-RefSeg checkpoint folder")
    clip: str | None = arg(None, help="CLIP model (hf id or folder); default: openai/clip-vit-large-patch14-336, "
                                      "or the matching tiny random CLIP for tiny-random")
    sam: str | None = arg(None, help="optional SamImageProcessor source (hf id or folder); the SAM weights "
                                     "come from the GLaMM checkpoint")
    image_dir: str | None = arg(None, help="image folder (default: REFER_DIR/images)")
    dataset: str = arg("refcoco", help="dataset name", choices=["refcoco", "refcoco+", "refcocog"])
    split_by: str = arg("unc", help="REFER split_by (unc, google, umd)")
    split: str = arg("val", help="split (val, testA, testB, test, ...)")


def check_out_config(out: Path, config: dict) -> None:
    """Refuse to resume into ``out`` when its config.json records a different configuration."""
    path = Path(out) / "config.json"
    if path.exists():
        old = json.loads(path.read_text())
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if diff:
            raise LiteLVLMError(f"{out} holds results of a different configuration (differs in: {', '.join(diff)}); "
                                "use another --out or delete it")
