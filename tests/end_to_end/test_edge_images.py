"""Images checked at the edge: a resize past the one cap (``MAX_RESIZED_SIDE``) refused before it happens,
EXIF-oriented JPEGs decoded as each family's official code reads them, and every image or sentence a run
leaves out said on screen with its count and first examples."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from litelvlm.cli import main
from litelvlm.data.refer import open_rgb
from litelvlm.data.resize_cap import MAX_RESIZED_SIDE
from litelvlm.errors import LiteLVLMError
from tests.fixtures.cli import one_error_line as _one_error_line

ROOT = Path(__file__).resolve().parents[2]


def _left_out(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
            and " left out: " in r.getMessage()]


# ---------------------------------------------------------------- the resize cap

@pytest.mark.odd_case("images", "a 6000 x 1 image (CLIP's shortest-edge resize would make it 2,016,000 x "
                      "336, 2.7 GB); a 1 x 600,000 image padded to a square", "select, select --pad",
                      "exit 2, one line naming the file, its size, the resized size and the cap "
                      "(MAX_RESIZED_SIDE), before any resizing")
@pytest.mark.parametrize("case", ["6000 x 1", "1 x 600000 padded"])
def test_an_image_past_the_resize_cap_is_refused_before_resizing(case, tmp_path, capsys, monkeypatch):
    size, pad, resized = (((6000, 1), [], "2016000 x 336") if case == "6000 x 1"
                          else ((1, 600000), ["--pad"], "600000 x 600000"))
    path = tmp_path / "thin.png"
    Image.new("RGB", size, (10, 20, 30)).save(path)
    monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: pytest.fail("an image was resized"))
    rc = main(["select", "--image", str(path), "--budget", "4", "--text", "a thing", "--threads", "1", *pad])
    line = _one_error_line(rc, capsys.readouterr().err, "select")
    assert f"image {str(path)!r} of {size[0]} x {size[1]} (width x height)" in line, line
    assert (f"resized to {resized}" in line
            and f"cap of {MAX_RESIZED_SIDE} pixels a side (MAX_RESIZED_SIDE)" in line)


def test_every_family_image_path_checks_its_resize(tmp_path, tiny_hf_clip, tiny_open_clip_dir):
    """CLIP (both backends) refuse past the cap, SAM's longest-side resize refuses a side below 1 pixel,
    UniPixel's smart_resize refuses its aspect ratio naming the file, VideoGLaMM's CLIP frames refuse past the
    cap; the 4000 x 3 image of the odd-image tests still passes (448,000 x 336 at 336 is under the cap)."""
    from litelvlm.clip import load_clip
    from litelvlm.glamm.sam_preprocess import sam_inputs
    from litelvlm.unipixel.protocol import resize_frame
    from litelvlm.videoglamm.prompt import clip_pixels

    path = tmp_path / "wide.png"
    Image.new("RGB", (30000, 1)).save(path)
    wide = open_rgb(path)
    # 56-pixel short side: 1,680,000
    for clip in (tiny_hf_clip, load_clip(f"local-dir:{tiny_open_clip_dir}")):
        with pytest.raises(LiteLVLMError, match=r"wide\.png' of 30000 x 1 .* resized to 1680000 x 56 "
                           r".*MAX_RESIZED_SIDE"):
            clip.preprocess([wide])
    with pytest.raises(LiteLVLMError, match=r"wide\.png' of 30000 x 1 .*resized to 1024 x 0 by SAM's .*below "
                       r"1 pixel"):
        sam_inputs(wide)
    with pytest.raises(LiteLVLMError, match=r"wide\.png': image of 1 x 30000 px: aspect ratio above 200"):
        resize_frame(wide)
    with pytest.raises(LiteLVLMError, match=r"6000 x 1 .*2016000 x 336 .*\(frame 0\).*MAX_RESIZED_SIDE"):
        clip_pixels([np.zeros((1, 6000, 3), dtype=np.uint8)])
    assert tuple(tiny_hf_clip.preprocess([Image.new("RGB", (4000, 3))]).shape) == (1, 3, 56, 56)


# ---------------------------------------------------------------- EXIF orientation, family by family

@pytest.fixture(scope="module")
def exif_refer(toy_refer, tmp_path_factory) -> Path:
    """The toy folder with each image stored on its side as a JPEG whose EXIF tag (8) turns it back: the
    annotations (64 x 48, polygons) are for the turned image, as a camera photo's are."""
    refer = tmp_path_factory.mktemp("exif") / "refer"
    shutil.copytree(toy_refer, refer)
    inst = json.loads((refer / "instances.json").read_text())
    exif = Image.Exif()
    exif[0x0112] = 8
    for im in inst["images"]:
        png = refer / "images" / im["file_name"]
        shown = Image.open(png).convert("RGB").crop((0, 0, 64, 48))
        png.unlink()
        jpg = png.with_suffix(".jpg")
        shown.transpose(Image.Transpose.ROTATE_90).save(jpg, exif=exif.tobytes(), quality=95)
        im.update(file_name=jpg.name, width=64, height=48)
    for a in inst["annotations"]:  # inside CLIP's centre crop, with patches outside it
        a["segmentation"] = [[16, 8, 48, 8, 48, 40, 16, 40]]
    (refer / "instances.json").write_text(json.dumps(inst))
    refs = pickle.loads((refer / "refs(unc).p").read_bytes())
    for r in refs:
        r["file_name"] = str(Path(r["file_name"]).with_suffix(".jpg"))
    (refer / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return refer


def test_the_family_table_says_how_each_family_reads_images():
    from litelvlm.registry.families import exif_transpose, table
    from litelvlm.unipixel.protocol import EXIF_TRANSPOSE

    assert exif_transpose("tiny-random:0") is True  # GLaMM: cv2.imread turns by the tag
    assert exif_transpose("unipixel-tiny-random:0") is EXIF_TRANSPOSE is False  # UniPixel: PIL.Image.open
    assert exif_transpose("videoglamm-tiny-random") is False  # VideoGLaMM's frames: PIL.Image.open
    assert exif_transpose("tiny336-random") is True  # a CLIP: GLaMM's, read as GLaMM reads images
    # Sa2VA: Image.open(...).convert('RGB') (RES.py L206)
    assert exif_transpose("sa2va-tiny-random:0") is False
    assert {name: e.exif_transpose for name, e in table().items()} == {"glamm": True, "unipixel": False,
                                                                      "videoglamm": False, "sa2va": False}


@pytest.mark.odd_case("images", "JPEGs with an EXIF orientation tag whose annotations are for the turned "
                      "image", "reversal, eval-grounding (GLaMM), retention",
                      "every sentence scored (decoded turned, as the official cv2.imread does); nothing left "
                      "out")
def test_exif_oriented_images_are_decoded_turned_for_glamm_and_clip_and_none_is_left_out(exif_refer, tmp_path,
                                                                                        caplog):
    out = tmp_path / "reversal"
    assert main(["reversal", "--refer-dir", str(exif_refer), "--out", str(out), "--model", "tiny-random",
                 "--threads", "1"]) == 0
    counts = json.loads((out / "config.json").read_text())["counts"]
    assert counts["sentences_scored"] == counts["sentences_total"] == 16, counts
    assert not any(k.startswith("excluded_image") for k in counts), counts
    out = tmp_path / "grounding"
    assert main(
        ["eval-grounding", "--refer-dir", str(exif_refer), "--out", str(out), "--model", "tiny-random:0",
                 "--methods", "litelvlm", "--budgets", "32", "--threads", "1"]) == 0
    assert pd.read_csv(out / "skipped.csv").empty
    assert set(pd.read_parquet(out / "grounding.parquet")["image_id"]) == {1, 2}
    out = tmp_path / "retention"
    assert main(["retention", "--refer-dir", str(exif_refer), "--out", str(out), "--limit-images", "2",
                 "--budgets", "4", "--methods", "litelvlm", "--threads", "1"]) == 0
    from litelvlm.clip import load_clip

    clip = load_clip("tiny336-random")
    jpg = exif_refer / "images" / "COCO_train2014_000000000001.jpg"

    def shown(turn: bool) -> np.ndarray:
        pixels = clip.preprocess([open_rgb(jpg, exif_transpose=turn)])
        return (clip.to_display(pixels)[0].numpy() * 255).round().astype(np.uint8)

    saved = np.asarray(Image.open(out / "images" / "1.png").convert("RGB"))
    assert np.array_equal(saved, shown(True)) and not np.array_equal(saved, shown(False))  # decoded turned
    assert not _left_out(caplog)


def test_retention_decodes_as_the_model_family_reads_images(exif_refer):
    from analysis.retention.compute import readable_examples
    from litelvlm.registry.families import exif_transpose

    jpg = exif_refer / "images" / "COCO_train2014_000000000001.jpg"
    for model, size in (("tiny336-random", (64, 48)), ("tiny-random:0", (64, 48)),
                        ("unipixel-tiny-random:0", (48, 64))):
        [(_, image, _)] = readable_examples([("1", jpg, ["a thing"])], [], exif_transpose(model))
        assert image.size == size, model


@pytest.mark.odd_case("images", "JPEGs with an EXIF orientation tag whose annotations are for the turned "
                      "image", "eval-grounding (UniPixel)",
                      "decoded unturned, as UniPixel's PIL.Image.open does: the tagged image skipped as a "
                      "size mismatch naming the tag, and a WARNING line with the count of sentences left out")
def test_unipixel_reads_exif_oriented_images_unturned_and_says_what_it_leaves_out(
    exif_refer, tmp_path, caplog):
    from litelvlm.data.refer import load_refer

    refer = tmp_path / "refer"
    shutil.copytree(exif_refer, refer)
    untagged = refer / "images" / "COCO_train2014_000000000002.jpg"
    # image 2 stored as shown, without a tag: UniPixel reads it as is
    open_rgb(untagged).save(untagged, quality=95)
    out = tmp_path / "grounding"
    assert main(["eval-grounding", "--refer-dir", str(refer), "--out", str(out), "--model",
                 "unipixel-tiny-random:0", "--methods", "litelvlm", "--budgets", "8", "--threads", "1"]) == 0
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped["image_id"]) == [1]
    assert "its EXIF orientation tag is 8, which the decoding ignored" in skipped["reason"][0]
    n = sum(1 for r in load_refer(refer, None) if r.image_id == 1)
    total = len(load_refer(refer, None))
    assert any(line.startswith(f"{n} of {total} sentences left out: image size mismatch ({n}): image 1: ")
               for line in _left_out(caplog)), _left_out(caplog)


# ---------------------------------------------------------------- what a run leaves out, on screen

def _mismatched(toy_refer: Path, dst: Path) -> Path:
    """The toy folder with image 2's annotations claiming 64 x 48 (its file is 64 x 64): its sentences cannot
    be scored against its masks."""
    shutil.copytree(toy_refer, dst)
    inst = json.loads((dst / "instances.json").read_text())
    inst["images"][1].update(height=48)
    for a in inst["annotations"]:  # referents large enough to fill a patch of the tiny model's 4 x 4 grid
        a["segmentation"] = [[16, 12, 48, 12, 48, 40, 16, 40]]
    (dst / "instances.json").write_text(json.dumps(inst))
    return dst


@pytest.mark.odd_case("exclusions", "an image whose file is not the size its annotations say", "reversal",
                      "its sentences left out, said on screen: one WARNING line with the count of sentences "
                      "left out of the total, the cause and the first images")
def test_sentences_left_out_are_said_on_screen_with_their_count_and_examples(toy_refer, tmp_path):
    refer = _mismatched(toy_refer, tmp_path / "refer")
    args = ["reversal", "--refer-dir", str(refer), "--model", "tiny-random", "--threads", "1"]
    # the features cached here first: the process below (what the screen shows) never loads the model
    assert main([*args, "--out", str(tmp_path / "warm")]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}  # the session's cache (conftest)
    done = subprocess.run([sys.executable, "-m", "litelvlm.cli", *args, "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    counts = json.loads((tmp_path / "out" / "config.json").read_text())["counts"]
    n = counts["excluded_image_size_mismatch"]
    lines = [line for line in done.stderr.splitlines() if line.startswith("WARNING")
             and " left out: " in line]
    assert n > 0 and len(lines) == 1, done.stderr
    assert (f"{n} of {counts['sentences_total']} sentences left out: image size mismatch ({n}): image 2: "
            "file is 64x64 but the annotation says 48x64 (height x width)") in lines[0], lines


@pytest.mark.odd_case("exclusions", "an unreadable image; a ref naming a missing annotation",
                      "eval-grounding, retention, importance",
                      "the run finishes; one WARNING line per cause with the count left out of the total and "
                      "the first images")
def test_skipped_images_and_refs_are_said_on_screen_by_every_study(toy_refer, tmp_path, caplog):
    from litelvlm.data.refer import load_refer

    refer = tmp_path / "refer"
    shutil.copytree(toy_refer, refer)
    image2 = refer / "images" / "COCO_train2014_000000000002.png"
    image2.write_bytes(image2.read_bytes()[:100])  # truncated
    common = ["--refer-dir", str(refer), "--threads", "1"]
    assert main(["eval-grounding", *common, "--out", str(tmp_path / "g"), "--model", "tiny-random:0",
                 "--methods", "litelvlm", "--budgets", "32"]) == 0
    n_sentences = sum(1 for r in load_refer(refer, None) if r.image_id == 2)
    total = len(load_refer(refer, None))
    assert any(
        line.startswith(f"{n_sentences} of {total} sentences left out: image unreadable ({n_sentences}): "
                        f"image 2: image {str(image2)!r} could not be read")
               for line in _left_out(caplog))
    caplog.clear()
    assert main(["retention", *common, "--out", str(tmp_path / "r"), "--limit-images", "2", "--budgets", "4",
                 "--methods", "litelvlm"]) == 0
    assert any(line.startswith("1 of 2 images left out: image unreadable (1): image 2: ")
               for line in _left_out(caplog))
    caplog.clear()
    assert main(["importance", *common, "--out", str(tmp_path / "i"), "--model", "tiny-random:0", "--signals",
                 "attention", "--max-sentences", "1", "--n-boot", "10"]) == 0
    assert any(line.startswith("1 of 2 sentences left out: image unreadable (1): image 2: ")
               for line in _left_out(caplog)), _left_out(caplog)
    caplog.clear()
    inst = json.loads((refer / "instances.json").read_text())
    inst["annotations"] = [a for a in inst["annotations"] if a["id"] != 1]
    (refer / "instances.json").write_text(json.dumps(inst))
    records = load_refer(refer, None)
    assert any(
        line.startswith(f"{total - len(records)} of {total} sentences left out: the ref names an annotation "
                        "that instances.json lacks") for line in _left_out(caplog)), _left_out(caplog)
