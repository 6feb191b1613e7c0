"""Video referring-segmentation data: the released layouts read back with exact masks, every partial download
refused with the file named, and this project's synthetic Ref-DAVIS-layout set.

The fake folders below are written in the layouts the official loaders read:
- Ref-DAVIS-17: mbzuai-oryx/VideoGLaMM @6b15b1e7f75009d0e1a858ac08e28021c4faaf11
  ``VideoGLaMM/utils/refer_datasets/new/davis17.py`` L19-45
  (``meta_expressions/<split>/meta_expressions.json``, ``<split>/JPEGImages/<video>/<frame>.jpg``),
  ``VideoGLaMM/utils/refer_datasets/davis.py`` L62-89 and L147-157
  (``<split>/Annotations/<video>/<frame>.png``, ``Image.open(png).convert('P')``, ``mask == int(obj_id)``),
  ``VideoGLaMM/eval_referdavis_infer.py`` L113-176 (four expressions per object, in the file's order);
  wjn922/ReferFormer @06fc218f5d8f04730f81471a15ed89ea7e4d30d8 ``tools/data/convert_davis_to_ytvos.py``
  L76-101 (the meta file's format, ``obj_id`` a string from "1") and L159-211.
- Refer-YouTube-VOS: VideoGLaMM ``VideoGLaMM/utils/refer_datasets/new/ytvos.py`` L19-57 (``valid`` minus the
  videos of ``meta_expressions/test``, sorted; ``<split>/JPEGImages``),
  ``VideoGLaMM/utils/refer_datasets/ytvos.py`` L43-50 (masks public for ``train`` only) and L152-160;
  ReferFormer ``inference_ytvos.py`` L70-85.
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
from litelvlm.video.records import read_object_ids
from litelvlm.video.synthetic import COLOURS, write_synthetic_videos

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
    exps = {"0": {"exp": "a cat on the left", "obj_id": "1"},
            "1": {"exp": "a dog running right", "obj_id": "2"}}
    _meta(root / "meta_expressions" / "train" / "meta_expressions.json",
          {"vid_a": {"expressions": exps, "frames": frames}})
    # valid's meta file also lists the test video "vid_t" (whose frames are in test/, not valid/)
    valid = {v: {"expressions": {"0": {"exp": f"the thing in {v}"}}, "frames": frames[:2]}
             for v in ("vid_z", "vid_t", "vid_b")}
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
    assert (both.obj_ids, both.anno_ids, moving.obj_ids, moving.anno_ids) == ((1, 2), ("10", "11"), (2,),
                                                                              ("11",))
    assert both.has_masks and both.dataset == "mevis" and both.split == split
    for t, ids in enumerate(_ids_frames()):
        assert np.array_equal(both.mask(t), ids > 0)
        assert np.array_equal(moving.mask(t), ids == 2)
    # only null entries: empty, frame-sized
    assert moving.mask(2).shape == (H, W) and not moving.mask(2).any()


def test_mevis_valid_has_no_masks(mevis):
    recs = load_mevis(mevis, "valid", check_files=True)
    assert [(r.exp_id, r.obj_ids, r.anno_ids, r.has_masks) for r in recs] == [("0", (), (), False),
                                                                              ("1", (), (), False)]
    with pytest.raises(LiteLVLMError, match="evaluation server"):
        recs[0].mask(0)


# --------------------------------------------------------------------------------------------
# Ref-DAVIS-17 and the synthetic set
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_synthetic_videos(tmp_path_factory.mktemp("synthetic") / "ref-davis", videos=4, frames=6,
                                  seed=3)


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_synthetic_set_reads_back_as_ref_davis(synthetic):
    recs = load_ref_davis(synthetic, "valid", check_files=True)
    categories = json.loads((synthetic / "valid" / "meta.json").read_text())["videos"]
    names, palette = list(COLOURS), np.array(list(COLOURS.values()), dtype=float)
    assert sorted({r.video for r in recs}) == [f"shapes-{v:03d}" for v in range(4)]
    for r in recs:
        assert r.frames == tuple(f"{t:05d}" for t in range(6)) and r.has_masks
        assert r.obj_ids == (int(r.exp_id) // 4 + 1,)  # Ref-DAVIS: four expressions per object, in order
        shape = categories[r.video]["objects"][str(r.obj_ids[0])]["category"]
        assert shape in r.sentence
        centres = []
        for t in range(6):
            png = synthetic / "valid" / "Annotations" / r.video / f"{r.frames[t]}.png"
            # as VideoGLaMM davis.py L152-157
            official = np.array(Image.open(png).convert("P")) == r.obj_ids[0]
            m = r.mask(t)
            assert m.any() and np.array_equal(m, official)
            pixels = np.asarray(r.frame(t), dtype=float)[m]
            colour = names[int(np.argmin(((palette - np.median(pixels, axis=0)) ** 2).sum(1)))]
            assert colour in r.sentence.split()
            centres.append(_centroid(m))
        step = np.diff(centres, axis=0)
        words = r.sentence.split()
        if "moving" in words or "going" in words:  # the motion the sentence names, frame after frame
            axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[words[-1]]
            assert (sign * step[:, axis] > 0).all() and np.allclose(step[:, 1 - axis], 0, atol=0.5)


def test_synthetic_places_match_the_frames(synthetic):
    for r in load_ref_davis(synthetic, "valid"):
        x, y = _centroid(r.mask(0)) / (128, 96)
        place = {"at the top": y < 0.5, "at the bottom": y > 0.5, "on the left": x < 0.5,
                 "on the right": x > 0.5}
        for phrase, holds in place.items():
            if phrase in r.sentence:
                assert holds, (r.sentence, x, y)
        if "in the middle" in r.sentence:
            assert abs(x - 0.5) < 1 / 6 or abs(y - 0.5) < 1 / 6


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synthetic_set_is_byte_identical_under_its_seed(tmp_path):
    a = _files(write_synthetic_videos(tmp_path / "a", videos=2, frames=3, size=(64, 48), seed=7))
    b = _files(write_synthetic_videos(tmp_path / "b", videos=2, frames=3, size=(64, 48), seed=7))
    c = _files(write_synthetic_videos(tmp_path / "c", videos=2, frames=3, size=(64, 48), seed=8))
    assert a == b and len(a) == 2 * 3 * 2 + 2
    assert a.keys() == c.keys() and a != c
    frame = Image.open(tmp_path / "a" / "valid" / "JPEGImages" / "shapes-000" / "00000.jpg")
    ann = Image.open(tmp_path / "a" / "valid" / "Annotations" / "shapes-000" / "00000.png")
    assert frame.size == ann.size == (64, 48) and ann.mode == "P" and ann.getpalette()[:6] == [
        0, 0, 0, 128, 0, 0]


def test_synthetic_set_refuses_unusable_arguments(tmp_path):
    for kwargs in ({"videos": 0}, {"frames": 1}, {"size": (16, 96)}):
        with pytest.raises(LiteLVLMError, match="synthetic videos need"):
            write_synthetic_videos(tmp_path / "x", **kwargs)


# --------------------------------------------------------------------------------------------
# partial downloads and malformed files: a LiteLVLMError naming the file or folder
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def davis(tmp_path, synthetic) -> Path:
    root = tmp_path / "ref-davis"
    shutil.copytree(synthetic, root)
    return root


def test_missing_root_split_and_meta_file_are_named(tmp_path, davis):
    with pytest.raises(LiteLVLMError, match="ref-davis17 folder .*nowhere.* does not exist"):
        load_ref_davis(tmp_path / "nowhere")
    with pytest.raises(LiteLVLMError, match="has no split 'val'; choose one of train, valid"):
        load_ref_davis(davis, "val")
    with pytest.raises(LiteLVLMError, match="unknown video dataset 'davis'"):
        load_video_expressions("davis", davis, "valid")
    with pytest.raises(LiteLVLMError, match=r"meta_expressions/train/meta_expressions.json' does not exist"):
        load_ref_davis(davis, "train")
    meta = davis / "meta_expressions" / "valid" / "meta_expressions.json"
    meta.write_text("{\"videos\": ")
    with pytest.raises(LiteLVLMError, match="meta_expressions.json' could not be read"):
        load_ref_davis(davis)
    meta.write_text(
        json.dumps({"videos": {"v": {"frames": ["00000"], "expressions": {"0": {"obj_id": "1"}}}}}))
    with pytest.raises(LiteLVLMError, match="video 'v', expression '0' has no 'exp' sentence"):
        load_ref_davis(davis)
    meta.write_text(
        json.dumps({"videos": {"shapes-000": {"frames": ["00000"], "expressions": {"0": {"exp": "x"}}}}}))
    with pytest.raises(LiteLVLMError, match="'shapes-000', expression '0' needs 'obj_id' as an object id; "
                       "got None"):
        load_ref_davis(davis)


def test_missing_folders_are_named(davis, ytvos, mevis):
    shutil.rmtree(davis / "valid" / "JPEGImages" / "shapes-001")
    with pytest.raises(LiteLVLMError, match=r"frame folder .*valid/JPEGImages/shapes-001' does not exist"):
        load_ref_davis(davis)
    shutil.rmtree(davis / "valid" / "Annotations" / "shapes-000")
    with pytest.raises(LiteLVLMError, match=r"annotation folder .*valid/Annotations/shapes-000' does not "
                       r"exist"):
        load_ref_davis(davis)
    shutil.rmtree(ytvos / "train" / "Annotations")
    with pytest.raises(LiteLVLMError, match=r"annotation folder .*train/Annotations' does not exist"):
        load_ref_youtube_vos(ytvos, "train")
    (ytvos / "meta_expressions" / "test" / "meta_expressions.json").unlink()
    with pytest.raises(LiteLVLMError, match=r"meta_expressions/test/meta_expressions.json' does not exist"):
        load_ref_youtube_vos(ytvos, "valid")
    (mevis / "valid_u" / "mask_dict.json").unlink()
    with pytest.raises(LiteLVLMError, match=r"mask file .*valid_u/mask_dict.json' does not exist"):
        load_mevis(mevis, "valid_u")


def test_a_listed_frame_or_annotation_that_is_absent_is_named(davis):
    frame = davis / "valid" / "JPEGImages" / "shapes-002" / "00003.jpg"
    frame.unlink()
    rec = next(r for r in load_ref_davis(davis) if r.video == "shapes-002")  # lazy: read without it
    with pytest.raises(LiteLVLMError, match=r"shapes-002/00003.jpg' does not exist"):
        rec.frame(3)
    with pytest.raises(LiteLVLMError, match=r"shapes-002/00003.jpg' does not exist, but .* lists it"):
        load_ref_davis(davis, check_files=True)
    _jpeg(frame, size=(128, 96))
    png = davis / "valid" / "Annotations" / "shapes-002" / "00004.png"
    png.unlink()
    with pytest.raises(LiteLVLMError, match=r"annotation .*shapes-002/00004.png' does not exist"):
        rec.mask("00004")
    with pytest.raises(LiteLVLMError, match=r"shapes-002/00004.png' does not exist, but the meta file lists "
                       r"frame"):
        load_ref_davis(davis, check_files=True)


def test_bad_annotations_are_named(davis, mevis):
    rec = load_ref_davis(davis)[0]
    png = davis / "valid" / "Annotations" / rec.video / "00000.png"
    Image.new("RGB", (128, 96)).save(png)
    with pytest.raises(LiteLVLMError, match="00000.png' is a mode RGB image, not a palette PNG"):
        rec.mask(0)
    _palette(png, np.zeros((10, 10)))
    with pytest.raises(LiteLVLMError, match=r"is 10 x 10 but the frame .*00000.jpg' is 128 x 96"):
        rec.mask(0)
    ids = np.zeros((96, 128), np.uint8)
    ids[5:9, 5:9] = rec.obj_ids[0]
    Image.fromarray(ids).save(png)  # greyscale object ids: read as convert('P') reads them
    assert np.array_equal(read_object_ids(png), ids) and rec.mask(0).sum() == 16
    with pytest.raises(LiteLVLMError, match="has 6 frames; no frame 6"):
        rec.mask(6)
    with pytest.raises(LiteLVLMError, match="has no frame '00099'"):
        rec.frame("00099")
    meta = mevis / "valid_u" / "meta_expressions.json"
    meta.write_text(meta.read_text().replace('"anno_id": [11]', '"anno_id": "11"'))
    with pytest.raises(LiteLVLMError, match=r"valid_u/meta_expressions.json'.* needs 'anno_id' as a list of "
                       r"ids; got '11'"):
        load_mevis(mevis, "valid_u")
    masks = mevis / "train" / "mask_dict.json"
    masks.write_text(json.dumps({"10": [None, None, None], "11": [None]}))
    both = load_mevis(mevis, "train")[0]  # the mask file is read on first use
    with pytest.raises(LiteLVLMError, match=r"mask_dict.json': annotation '11' has 1 frames but video 'v1' "
                       r"lists 3"):
        both.mask(0)
    masks.write_text(json.dumps({"10": [None, None, None]}))
    with pytest.raises(LiteLVLMError, match=r"mask_dict.json' has no annotation '11'"):
        load_mevis(mevis, "train", check_files=True)

