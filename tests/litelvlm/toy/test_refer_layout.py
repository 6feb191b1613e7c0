"""The toy set in REFER layout reads back through the real loader with the generator's exact masks."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from litelvlm.cli import main
from litelvlm.data.refer import load_refer
from litelvlm.errors import LiteLVLMError
from litelvlm.toy.refer_layout import write_refer
from litelvlm.toy.scenes import COLOURS, make_scene


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_refer(tmp_path_factory.mktemp("toy") / "set", n_scenes=4, seed=5, size=128)


def test_loader_reads_exact_masks_and_expressions(toy_dir):
    recs = load_refer(toy_dir, toy_dir / "images", split="val")
    assert len({r.image_id for r in recs}) == 4
    assert all(r.image_path.suffix == ".png" and r.image_path.name.startswith("COCO_train2014_")
               for r in recs)
    scenes = {i + 1: make_scene(5, i, 128) for i in range(4)}
    attrs = {o["ann_id"]: o for o in json.loads((toy_dir / "scenes.json").read_text())["objects"]}
    names = list(COLOURS)
    palette = np.array([COLOURS[n] for n in names], dtype=float)
    for r in recs:
        meta = attrs[r.ann_id]
        obj = scenes[r.image_id].objects[meta["z_order"]]
        assert np.array_equal(r.mask(), obj.mask)
        assert r.category == obj.shape and obj.shape in r.sentence
        image = np.asarray(r.image())
        assert np.array_equal(image, scenes[r.image_id].image)  # png: lossless
        median = np.median(image[r.mask()].astype(float), axis=0)
        assert names[int(np.argmin(((palette - median) ** 2).sum(1)))] == meta["colour"]
        for word in names:
            if word in r.sentence.split():
                assert word == meta["colour"]


def test_refs_pickle_has_the_refer_fields(toy_dir):
    with open(toy_dir / "refs(unc).p", "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    refs = pickle.loads(raw)
    for ref in refs:
        assert set(ref) == {"ref_id", "ann_id", "image_id", "split", "category_id", "file_name", "sent_ids",
                            "sentences"}
        assert [s["sent_id"] for s in ref["sentences"]] == ref["sent_ids"]
        assert all(set(s) == {"tokens", "raw", "sent_id", "sent"} for s in ref["sentences"])
        assert len({s["sent"] for s in ref["sentences"]}) == len(ref["sentences"])


@pytest.mark.odd_case("cleanup", "toy-data --overwrite into a folder it did not write (a user's notes, a "
                      "real RefCOCO folder)", "toy-data", "refused, one line; the folder untouched")
def test_existing_folder_needs_overwrite_and_cli_writes(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["toy-data", "--out", str(out), "--scenes", "2", "--size", "96"]) == 0
    assert (out / "instances.json").exists() and len(list((out / "images").iterdir())) == 2
    assert main(["toy-data", "--out", str(out), "--scenes", "2"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["toy-data", "--out", str(out), "--scenes", "3", "--size", "96", "--overwrite"]) == 0
    assert len(list((out / "images").iterdir())) == 3
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(LiteLVLMError, match="not a toy REFER folder"):
        write_refer(other, 1, overwrite=True)
    assert (other / "notes.txt").exists()
    (other / "refs(unc).p").write_bytes(b"a real RefCOCO folder's")   # not written by toy-data: kept
    with pytest.raises(LiteLVLMError, match="not a toy REFER folder"):
        write_refer(other, 1, overwrite=True)
    assert (other / "refs(unc).p").read_bytes() == b"a real RefCOCO folder's"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
