"""REFER / COCO loading: the real COCO-128 REFER sample, merged polygon parts, plain COCO instances."""

from __future__ import annotations

import json
import pickle
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from litelvlm.data import load_coco_instances, load_expressions, load_refer, wrap_question
from litelvlm.data.fixtures import write_tiny_refer
from litelvlm.data.refer import decode_segmentation, open_rgb
from litelvlm.errors import LiteLVLMError


# --------------------------------------------------------------------------------------------
# the real data, unchanged
# --------------------------------------------------------------------------------------------
def test_coco128_counts_per_split_match_the_pickle(coco128):
    stamp = {p.name: p.stat().st_mtime_ns for p in coco128.iterdir() if p.is_file()}
    with open(coco128 / "refs(unc).p", "rb") as f:
        refs = pickle.load(f)
    assert len(refs) == 357 and sum(len(r["sentences"]) for r in refs) == 656  # as the data README says
    want_refs = Counter(r["split"] for r in refs)
    want_sents = Counter()
    for r in refs:
        want_sents[r["split"]] += len(r["sentences"])
    for split in want_refs:
        recs = load_refer(coco128, coco128 / "images", split=split)
        assert len(recs) == want_sents[split]
        assert len({r.ref_id for r in recs}) == want_refs[split]
        assert all(r.split == split for r in recs)
        assert [(r.image_id, r.ref_id, r.sent_id) for r in recs] == sorted((r.image_id, r.ref_id, r.sent_id)
                                                                          for r in recs)
    assert len(load_refer(coco128, None, split="all")) == 656
    assert stamp == {p.name: p.stat().st_mtime_ns for p in coco128.iterdir() if p.is_file()}


def test_coco128_every_mask_decodes_non_empty(coco128):
    recs = load_refer(coco128, None, split="all")
    inst = json.loads((coco128 / "instances.json").read_text())
    anns = {a["id"]: a for a in inst["annotations"]}
    seen = set()
    for r in recs:
        if r.ann_id in seen:
            continue
        seen.add(r.ann_id)
        m = r.mask()
        assert m.dtype == bool and m.shape == (r.height, r.width) and m.any()
        # independent: each polygon decoded alone, OR-ed
        parts = [mask_utils.decode(mask_utils.frPyObjects([p], r.height, r.width))[..., 0]
                 for p in anns[r.ann_id]["segmentation"]]
        np.testing.assert_array_equal(m, np.logical_or.reduce(parts).astype(bool))
    assert len(seen) == 357
    first = recs[0]
    assert first.image_path.is_file() and open_rgb(first.image_path).size == (first.width, first.height)


def test_refcoco_val_expressions(shared_data):
    ex = load_expressions(shared_data / "refcoco_unc_expressions" / "val.json")
    assert len(ex) == 10834 and ex[0].index == 0 and ex[0].text


# --------------------------------------------------------------------------------------------
# hand-made data
# --------------------------------------------------------------------------------------------
def test_overlapping_polygon_parts_are_merged_not_summed():
    a = [2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0]
    b = [7.0, 7.0, 17.0, 7.0, 17.0, 17.0, 7.0, 17.0]
    m = decode_segmentation([a, b], 20, 20)
    da = mask_utils.decode(mask_utils.frPyObjects([a], 20, 20))[..., 0].astype(bool)
    db = mask_utils.decode(mask_utils.frPyObjects([b], 20, 20))[..., 0].astype(bool)
    assert (da & db).sum() > 0  # they do overlap
    np.testing.assert_array_equal(m, da | db)
    assert m.sum() == (da | db).sum() < da.sum() + db.sum()
    # the old REFER bug summed the parts: overlapping pixels would be 2
    summed = mask_utils.decode(mask_utils.frPyObjects([a, b], 20, 20)).sum(2)
    assert summed.max() == 2 and m.max() == 1


def test_rle_forms_decode():
    m = np.zeros((9, 7), np.uint8, order="F")
    m[2:5, 1:6] = 1
    rle = mask_utils.encode(m)
    np.testing.assert_array_equal(decode_segmentation(rle, 9, 7), m.astype(bool))
    rle_str = {"size": rle["size"], "counts": rle["counts"].decode()}
    np.testing.assert_array_equal(decode_segmentation(rle_str, 9, 7), m.astype(bool))
    # uncompressed RLE: column-major run lengths
    flat = m.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    np.testing.assert_array_equal(decode_segmentation({"size": [9, 7], "counts": runs}, 9, 7), m.astype(bool))


def test_tiny_refer_fixture_loads_and_official_layout(tmp_path):
    root = write_tiny_refer(tmp_path / "flat")
    recs = load_refer(root, None)
    assert len(recs) == 6 and {r.category for r in recs} == {"box", "pair"}
    pair = next(r for r in recs if r.category == "pair")
    assert pair.mask().sum() > 0
    # the official download keeps refs and instances in <root>/<dataset>/
    official = tmp_path / "refer_data"
    (official / "refcoco").mkdir(parents=True)
    for name in ("refs(unc).p", "instances.json"):
        shutil.copy(root / name, official / "refcoco" / name)
    assert len(load_refer(official, root / "images", "refcoco", "unc", "val")) == 6


def test_plain_coco_instances_category_name_is_the_phrase(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "images" / "a.jpg")
    inst = {"images": [{"id": 7, "file_name": "a.jpg", "height": 20, "width": 30}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
            "annotations": [
                {"id": 11, "image_id": 7, "category_id": 18, "iscrowd": 0,
                 "segmentation": [[1, 1, 10, 1, 10, 10, 1, 10]], "bbox": [1, 1, 9, 9]},
                {"id": 12, "image_id": 7, "category_id": 1, "iscrowd": 1,
                 "segmentation": {"size": [20, 30], "counts": [0, 600]}, "bbox": [0, 0, 30, 20]},
                {"id": 13, "image_id": 7, "category_id": 1, "iscrowd": 0,
                 "segmentation": [[15, 2, 25, 2, 25, 18, 15, 18]], "bbox": [15, 2, 10, 16]}]}
    (tmp_path / "instances.json").write_text(json.dumps(inst))
    recs = load_coco_instances(tmp_path / "instances.json", None)
    assert [(r.ann_id, r.sentence, r.category) for r in recs] == [(11, "dog", "dog"),
                                                                  (13, "person", "person")]
    assert all(r.mask().any() for r in recs) and recs[0].split == "val"


def test_loader_errors_name_the_problem(tmp_path):
    root = write_tiny_refer(tmp_path / "r")
    with pytest.raises(LiteLVLMError, match="split 'testA'"):
        load_refer(root, None, split="testA")
    with pytest.raises(LiteLVLMError, match="refs\\(google\\).p"):
        load_refer(root, None, split_by="google")
    with pytest.raises(LiteLVLMError, match="does not exist"):
        load_refer(tmp_path / "nope", None)
    with pytest.raises(LiteLVLMError, match="image folder"):
        load_refer(root, tmp_path / "no_images")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(LiteLVLMError, match="bad.jpg"):
        open_rgb(bad)


def test_glamm_template_is_seeded_per_sentence():
    a = wrap_question("the dog on the left.", 5, seed=0)
    assert "the dog on the left" in a and a == wrap_question("the dog on the left.", 5, seed=0)
    picks = {wrap_question("x", k, seed=1) for k in range(40)}
    assert len(picks) > 1
