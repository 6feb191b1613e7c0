"""Video referring-segmentation data: the released layouts read back with exact masks, every partial download
refused with the file named, and this project's synthetic Ref-DAVIS-layout set.

The fake folders below are written in the layouts the official loaders read:
- Ref-DAVIS-17: mbzuai-oryx/VideoGLaMM @6b15b1e7f75009d0e1a858ac08e28021c4faaf11
  ``VideoGLaMM/utils/refer_datasets/new/davis17.py`` L19-45 (``meta_expressions/<split>/meta_expressions.json``,
  ``<split>/JPEGImages/<video>/<frame>.jpg``), ``VideoGLaMM/utils/refer_datasets/davis.py`` L62-89 and L147-157
  (``<split>/Annotations/<video>/<frame>.png``, ``Image.open(png).convert('P')``, ``mask == int(obj_id)``),
  ``VideoGLaMM/eval_referdavis_infer.py`` L113-176 (four expressions per object, in the file's order);
  wjn922/ReferFormer @06fc218f5d8f04730f81471a15ed89ea7e4d30d8 ``tools/data/convert_davis_to_ytvos.py``
  L76-101 (the meta file's format, ``obj_id`` a string from "1") and L159-211.
- Refer-YouTube-VOS: VideoGLaMM ``VideoGLaMM/utils/refer_datasets/new/ytvos.py`` L19-57 (``valid`` minus the
  videos of ``meta_expressions/test``, sorted; ``<split>/JPEGImages``), ``VideoGLaMM/utils/refer_datasets/ytvos.py``
  L43-50 (masks public for ``train`` only) and L152-160; ReferFormer ``inference_ytvos.py`` L70-85.
- MeViS: VideoGLaMM ``VideoGLaMM/utils/refer_datasets/mevis.py`` L59-158 (``<split>/meta_expressions.json``,
  ``mask_dict.json`` for ``train`` and ``valid_u`` only, ``mask_dict[anno_id][frame_index]``, a null entry
  skipped); henghuiding/MeViS @7c0620b9dc0ab7802747957f221674f175c8a47b ``tools/eval_mevis.py`` L41-51 (the
  RLEs of an expression's annotations summed per frame) and ``tools/metrics.py`` L18 (the sum read as bool:
  the union).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from litelvlm.errors import LiteLVLMError
from litelvlm.video.datasets import (
    SPLITS,
    load_mevis,
    load_ref_davis,
    load_ref_youtube_vos,
    load_video_expressions,
)

W, H = 12, 8


def _jpeg(path: Path, size=(W, H), value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def _palette(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(ids.astype(np.uint8))
    im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] * 64)
    im.save(path)


def _meta(path: Path, videos: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"videos": videos}))


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def _ids_frames() -> list[np.ndarray]:
    """Object ids of three frames: object 1 in the top-left, object 2 moving right (gone in the last)."""
    out = []
    for t in range(3):
        ids = np.zeros((H, W), np.uint8)
        ids[0:3, 0:4] = 1
        if t < 2:
            ids[4:7, 3 + 3 * t: 6 + 3 * t] = 2
        out.append(ids)
    return out


# --------------------------------------------------------------------------------------------
# Refer-YouTube-VOS
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def ytvos(tmp_path) -> Path:
    root = tmp_path / "refer_youtube_vos"
    frames = ["00000", "00005", "00010"]
    for name, ids in zip(frames, _ids_frames()):
        _jpeg(root / "train" / "JPEGImages" / "vid_a" / f"{name}.jpg")
        _palette(root / "train" / "Annotations" / "vid_a" / f"{name}.png", ids)
    exps = {"0": {"exp": "a cat on the left", "obj_id": "1"}, "1": {"exp": "a dog running right", "obj_id": "2"}}
    _meta(root / "meta_expressions" / "train" / "meta_expressions.json", {"vid_a": {"expressions": exps, "frames": frames}})
    # valid's meta file also lists the test video "vid_t" (whose frames are in test/, not valid/)
    valid = {v: {"expressions": {"0": {"exp": f"the thing in {v}"}}, "frames": frames[:2]} for v in ("vid_z", "vid_t", "vid_b")}
    _meta(root / "meta_expressions" / "valid" / "meta_expressions.json", valid)
    _meta(root / "meta_expressions" / "test" / "meta_expressions.json", {"vid_t": valid["vid_t"]})
    for v in ("vid_z", "vid_b"):
        for name in frames[:2]:
            _jpeg(root / "valid" / "JPEGImages" / v / f"{name}.jpg")
    return root


def test_ytvos_train_reads_exact_masks(ytvos):
    recs = load_ref_youtube_vos(ytvos, "train", check_files=True)
    assert [(r.video, r.exp_id, r.obj_ids, r.sentence) for r in recs] == [
        ("vid_a", "0", (1,), "a cat on the left"), ("vid_a", "1", (2,), "a dog running right")]
    ids = _ids_frames()
    for r in recs:
        assert r.dataset == "ref-youtube-vos" and r.split == "train" and r.has_masks
        assert r.frames == ("00000", "00005", "00010")
        for t, name in enumerate(r.frames):
            m = r.mask(name)
            assert m.dtype == bool and np.array_equal(m, ids[t] == r.obj_ids[0])
            assert np.array_equal(r.mask(t), m)
        assert r.frame("00005").size == (W, H) and r.frame(-1).mode == "RGB"
    assert not recs[1].mask(2).any()  # object 2 has left the video: an empty mask, not an error


def test_ytvos_valid_drops_test_videos_and_has_no_masks(ytvos):
    recs = load_ref_youtube_vos(ytvos, "valid", check_files=True)
    assert [r.video for r in recs] == ["vid_b", "vid_z"]  # test video dropped, the rest sorted
    assert all(not r.has_masks and r.obj_ids == () for r in recs) and not SPLITS["ref-youtube-vos"]["valid"]
    assert recs[0].frame(0).size == (W, H)
    with pytest.raises(LiteLVLMError, match="no public ground-truth masks.*evaluation server"):
        recs[0].mask(0)
    assert load_video_expressions("ref-youtube-vos", ytvos, "valid") == recs


# --------------------------------------------------------------------------------------------
# MeViS
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def mevis(tmp_path) -> Path:
    root = tmp_path / "mevis"
    frames = ["00000", "00001", "00002"]
    ids = _ids_frames()
    for split in ("train", "valid_u", "valid"):
        for name in frames:
            _jpeg(root / split / "JPEGImages" / "v1" / f"{name}.jpg")
        exps = {"0": {"exp": "the two animals", "obj_id": [1, 2], "anno_id": [10, 11]},
                "1": {"exp": "the one that moves", "obj_id": [2], "anno_id": [11]}}
        if split == "valid":
            exps = {k: {"exp": e["exp"]} for k, e in exps.items()}
        _meta(root / split / "meta_expressions.json", {"v1": {"expressions": exps, "frames": frames}})
        if split != "valid":  # object 2's last frame is null, as MeViS writes a frame without the object
            masks = {"10": [_rle(i == 1) for i in ids], "11": [_rle(i == 2) for i in ids[:2]] + [None]}
            (root / split / "mask_dict.json").write_text(json.dumps(masks))
    return root


@pytest.mark.parametrize("split", ["train", "valid_u"])
def test_mevis_masks_are_the_union_of_the_annotations(mevis, split):
    both, moving = load_mevis(mevis, split, check_files=True)
    assert (both.obj_ids, both.anno_ids, moving.obj_ids, moving.anno_ids) == ((1, 2), ("10", "11"), (2,), ("11",))
    assert both.has_masks and both.dataset == "mevis" and both.split == split
    for t, ids in enumerate(_ids_frames()):
        assert np.array_equal(both.mask(t), ids > 0)
        assert np.array_equal(moving.mask(t), ids == 2)
    assert moving.mask(2).shape == (H, W) and not moving.mask(2).any()  # only null entries: empty, frame-sized


def test_mevis_valid_has_no_masks(mevis):
    recs = load_mevis(mevis, "valid", check_files=True)
    assert [(r.exp_id, r.obj_ids, r.anno_ids, r.has_masks) for r in recs] == [("0", (), (), False), ("1", (), (), False)]
    with pytest.raises(LiteLVLMError, match="evaluation server"):
        recs[0].mask(0)


# --------------------------------------------------------------------------------------------
# partial downloads and malformed files: a LiteLVLMError naming the file or folder
# --------------------------------------------------------------------------------------------
def test_missing_folders_and_files_are_named(tmp_path, ytvos, mevis):
    with pytest.raises(LiteLVLMError, match="ref-davis17 folder .*nowhere.* does not exist"):
        load_ref_davis(tmp_path / "nowhere")
    with pytest.raises(LiteLVLMError, match="mevis has no split 'val'; choose one of train, valid_u, valid"):
        load_mevis(mevis, "val")
    shutil.rmtree(ytvos / "train" / "Annotations")
    with pytest.raises(LiteLVLMError, match=r"annotation folder .*train/Annotations' does not exist"):
        load_ref_youtube_vos(ytvos, "train")
    (ytvos / "meta_expressions" / "test" / "meta_expressions.json").unlink()
    with pytest.raises(LiteLVLMError, match=r"meta_expressions/test/meta_expressions.json' does not exist"):
        load_ref_youtube_vos(ytvos, "valid")
    (mevis / "valid_u" / "mask_dict.json").unlink()
    with pytest.raises(LiteLVLMError, match=r"mask file .*valid_u/mask_dict.json' does not exist"):
        load_mevis(mevis, "valid_u")
