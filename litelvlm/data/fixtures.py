"""A tiny hand-made REFER folder (images, instances.json, refs(unc).p) for tests and examples."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_tiny_refer(folder: str | Path,
                     sizes: tuple[tuple[int, int], ...] = ((120, 160), (160, 120), (100, 100)),
                     seed: int = 0) -> Path:
    """Write a REFER-layout folder: one image per (H, W) in ``sizes``, two rectangle referents each.

    Every image has a "box" (a rectangle in the left half) and a "disc" referent (two
    overlapping polygon parts, to exercise merging), split ``val``, one sentence each.
    Returns the folder.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, anns, refs = [], [], []
    ann_id = ref_id = sent_id = 0
    for i, (h, w) in enumerate(sizes, start=1):
        arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        name = f"COCO_train2014_{i:012d}.jpg"
        Image.fromarray(arr).save(folder / "images" / name, quality=90)
        images.append({"id": i, "file_name": name, "height": h, "width": w})
        y0, y1, x0, x1 = h // 4, 3 * h // 4, w // 8, w // 2
        parts = {
            "box": [[x0, y0, x1, y0, x1, y1, x0, y1]],
            # two overlapping rectangles on the right: the union, not the sum
            "pair": [[w * 0.55, h * 0.1, w * 0.8, h * 0.1, w * 0.8, h * 0.6, w * 0.55, h * 0.6],
                     [w * 0.65, h * 0.3, w * 0.95, h * 0.3, w * 0.95, h * 0.9, w * 0.65, h * 0.9]],
        }
        for cat_id, (cat, seg) in enumerate(parts.items(), start=1):
            ann_id += 1
            ref_id += 1
            sent_id += 1
            anns.append({"id": ann_id, "image_id": i, "category_id": cat_id, "segmentation": seg,
                         "area": 0.0, "bbox": [0, 0, 1, 1], "iscrowd": 0})
            text = f"the {cat} on the {'left' if cat == 'box' else 'right'}"
            refs.append({"ref_id": ref_id, "ann_id": ann_id, "image_id": i, "split": "val",
                         "category_id": cat_id, "file_name": name.replace(".jpg", f"_{ann_id}.jpg"),
                         "sent_ids": [sent_id],
                         "sentences":
                         [{"tokens": text.split(), "raw": text, "sent_id": sent_id, "sent": text}]})
    cats = [{"id": 1, "name": "box", "supercategory": ""}, {"id": 2, "name": "pair", "supercategory": ""}]
    (folder / "instances.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))
    with open(folder / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    return folder
