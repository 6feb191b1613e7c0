"""Write synthetic scenes in the REFER layout, so every study reads them through the real loader.

The folder holds ``refs(unc).p`` (pickle protocol 2, the fields of the original RefCOCO
file), ``instances.json`` (COCO instances with RLE segmentation that pycocotools decodes)
and ``images/COCO_train2014_<12-digit id>.png``, plus ``scenes.json`` with each
annotation's attributes (shape, colour, size, cell), which the original layout lacks.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from ..errors import LiteLVLMError
from ..runs.io import atomic_path, write_text
from ..runs.run_folder import RunFolder
from ..runs.run_owner import owner
from .scenes import CELLS, SHAPES, make_scene, referring_expressions

#: scene seed used by ``litelvlm toy-data`` and the demo (training uses 1, held-out checks 2)
DEMO_SEED = 3


def image_file_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.png"


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def _check_refer_args(out: Path, n_scenes: int, sentences_per_object: int, overwrite: bool) -> None:
    """Refuse bad counts, and an ``out`` that holds something (unless ``overwrite``) or is not a REFER
    folder."""
    if n_scenes < 1:
        raise LiteLVLMError(f"the number of scenes must be >= 1, got {n_scenes}")
    if sentences_per_object < 1:
        raise LiteLVLMError(f"sentences per object must be >= 1, got {sentences_per_object}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise LiteLVLMError(f"output folder {str(out)!r} exists and is not empty (use --overwrite)")
        if not ((out / "refs(unc).p").exists() and (out / "scenes.json").exists()) and any(out.iterdir()) \
                and not _holds_a_run(out):  # another command's run is replaced whole (runs.run_owner)
            raise LiteLVLMError(f"refusing to overwrite {str(out)!r}: it is not a toy REFER folder written "
                                "by litelvlm toy-data (no scenes.json beside refs(unc).p)")


def _holds_a_run(out: Path) -> bool:
    """Whether ``out`` holds a run of one of this project's commands (readable enough to say which)."""
    try:
        return owner(out) is not None
    except LiteLVLMError:
        return False


def write_refer(out: str | os.PathLike, n_scenes: int = 64, seed: int = DEMO_SEED, size: int = 224,
                split: str = "val", sentences_per_object: int = 2, overwrite: bool = False) -> Path:
    """Render ``n_scenes`` scenes and write them as a REFER folder at ``out``; returns it.

    Every object gets one ref with up to ``sentences_per_object`` distinct referring
    expressions, each of which describes that object only. The files are written through
    :class:`~litelvlm.runs.run_folder.RunFolder` (``toy-data``'s run): nothing is left at ``out`` if writing
            fails;
    an existing non-empty ``out`` is replaced (whole) only with ``overwrite``; another command's run is
    refused.
    """
    out = Path(out)
    _check_refer_args(out, n_scenes, sentences_per_object, overwrite)
    # the run's folder: staged and committed together, recorded as toy-data's run, another command's refused
    with RunFolder(out, direct=(), command="toy-data", overwrite=overwrite or None):
        images, anns, refs, attrs = [], [], [], []
        ann_id = ref_id = sent_id = 0
        rng = np.random.default_rng([seed, 99])
        for i in tqdm(range(n_scenes), desc="toy scenes", leave=False, mininterval=5):
            scene = make_scene(seed, i, size)
            image_id = i + 1
            name = image_file_name(image_id)
            with atomic_path(out / "images" / name) as tmp:
                Image.fromarray(scene.image).save(tmp, format="PNG")
            images.append({"id": image_id, "file_name": name, "width": size, "height": size})
            for k, obj in enumerate(scene.objects):
                ann_id += 1
                ref_id += 1
                cat = SHAPES.index(obj.shape) + 1
                anns.append({"id": ann_id, "image_id": image_id, "category_id": cat,
                             "segmentation": _rle(obj.mask), "area": float(obj.mask.sum()),
                             "bbox": _bbox(obj.mask), "iscrowd": 0})
                exprs = referring_expressions(scene, k)
                chosen = [exprs[0]] + [exprs[j] for j in rng.permutation(len(exprs))[:sentences_per_object]
                                       if j != 0][:sentences_per_object - 1]
                sents = []
                for e in chosen:
                    sent_id += 1
                    sents.append(
                        {"tokens": e.text.split(), "raw": e.text, "sent_id": sent_id, "sent": e.text})
                refs.append({"ref_id": ref_id, "ann_id": ann_id, "image_id": image_id, "split": split,
                             "category_id": cat, "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.png",
                             "sent_ids": [s["sent_id"] for s in sents], "sentences": sents})
                attrs.append(
                    {"ann_id": ann_id, "image_id": image_id, "shape": obj.shape, "colour": obj.colour,
                              "size": obj.size, "cell": list(obj.cell), "cell_index": CELLS.index(obj.cell),
                              "center": [round(c, 3) for c in obj.center], "z_order": k})
        cats = [{"id": j + 1, "name": s, "supercategory": "shape"} for j, s in enumerate(SHAPES)]
        write_text(out / "instances.json",
                   json.dumps({"images": images, "annotations": anns, "categories": cats}))
        with atomic_path(out / "refs(unc).p") as tmp, open(tmp, "wb") as f:
            pickle.dump(refs, f, protocol=2)
        write_text(out / "scenes.json", json.dumps({"seed": seed, "size": size, "n_scenes": n_scenes,
                                                    "objects": attrs}, indent=1))
    return out
