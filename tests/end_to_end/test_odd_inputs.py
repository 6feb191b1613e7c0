"""Odd but plausible inputs: odd images, odd sentences, corrupted REFER files, paths with spaces and
non-ASCII characters. Each case ends in one of three ways, pinned here:

* correct, finite results (``ok``);
* exit 2 with one stderr line naming the file, the ref or the annotation, and nothing in ``--out``
  (``error``);
* results plus a logged warning (``warns``).

Model-loading failures, read-only outputs, EXIF orientation, corrupt caches and parts, interrupted runs
and code-carrying pickles have their own tests (test_bad_inputs, test_image_decoding, test_run_folder,
test_resume_signals, test_refs_unpickler).
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from litelvlm.cli import main


def _assert_error(rc: int, err: str, command: str, names: str, out: Path) -> None:
    lines = [line for line in err.splitlines()  # an error found mid-run follows its progress bar
             if line.strip() and not line.startswith("WARNING") and "%|" not in line]
    assert rc == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith(f"litelvlm {command}: error: "), lines
    assert names in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


# ---------------------------------------------------------------- images (select)

def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data (a 'decompression bomb')."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I",
                                                                        zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))


def _odd_image(case: str, folder: Path) -> Path:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    path = folder / {"cmyk": "cmyk.jpg", "16-bit": "gray16.png", "palette": "palette.png", "1x1": "one.png",
                     "very wide": "wide.png", "truncated": "truncated.jpg", "too large": "huge.png",
                     "grey+alpha": "la.png", "non-ascii path": "dír with späce/画像.png"}[case]
    path.parent.mkdir(parents=True, exist_ok=True)
    if case == "cmyk":
        rgb.convert("CMYK").save(path)
    elif case == "16-bit":
        Image.fromarray(np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20).save(path)
    elif case == "palette":
        rgb.convert("P").save(path, transparency=0)
    elif case == "1x1":
        Image.new("RGB", (1, 1), (200, 10, 10)).save(path)
    elif case == "very wide":
        Image.new("RGB", (4000, 3), (1, 2, 3)).save(path)
    elif case == "truncated":
        rgb.save(folder / "full.jpg")
        data = (folder / "full.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "too large":
        _png_header_only(path, 20000, 20000)
    else:
        rgb.convert("LA" if case == "grey+alpha" else "RGB").save(path)
    return path


#: case -> (outcome, text that the error or warning names besides the path)
IMAGE_CASES = {"cmyk": ("ok", ""), "palette": ("ok", ""), "1x1": ("ok", ""), "very wide": ("ok", ""),
               "grey+alpha": ("ok", ""), "non-ascii path": ("ok", ""),
               "16-bit": ("warns", "clips every value above 255"),
               "truncated": ("error", "image file is truncated"),
               "too large": ("error", "decompression bomb")}


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_select_on_odd_images(case, tmp_path, capsys, caplog):
    image = _odd_image(case, tmp_path)
    overlay = tmp_path / "out" / "kept tokens é.png"
    rc = main(["select", "--image", str(image), "--budget", "4", "--text", "a thing", "--json",
               "--save-overlay", str(overlay), "--threads", "1"])
    outcome, names = IMAGE_CASES[case]
    captured = capsys.readouterr()
    if outcome == "error":
        _assert_error(rc, captured.err, "select", str(image), overlay.parent)
        assert names in captured.err
        return
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert len(set(result["indices"])) == 4 and all(0 <= i < 576 for i in result["indices"])
    assert overlay.is_file()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (outcome == "warns") == any(names in w for w in warned) if names else not warned


# ---------------------------------------------------------------- sentences (select)

LONG = "the small red circle next to the big blue square on the left of the picture " * 8
SENTENCES = {"empty": "", "whitespace": " \t  ", "far past 77 tokens": LONG,
             "emoji": "🐶 the dog 🐕‍🦺 on the left", "non-Latin": "左边的红色圆圈 и синий квадрат"}


@pytest.mark.parametrize("case", SENTENCES)
def test_select_on_odd_sentences_gives_finite_selections(case, tmp_path, capsys):
    image = _odd_image("1x1", tmp_path)
    rc = main(["select", "--image", str(image), "--budget", "8", "--text", SENTENCES[case], "--text", "a dog",
               "--json", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    indices = json.loads(captured.out.strip().splitlines()[-1])["indices"]
    assert len(set(indices)) == 8 and all(0 <= i < 576 for i in indices)
    assert ("longer than" in captured.err or "truncat" in captured.err) == (case == "far past 77 tokens")


# ---------------------------------------------------------------- REFER folders

def _edit_refer(src: Path, dst: Path, refs_fn=None, inst_fn=None) -> Path:
    shutil.copytree(src, dst)
    refs = pickle.loads((dst / "refs(unc).p").read_bytes())
    inst = json.loads((dst / "instances.json").read_text())
    new_refs = refs_fn(refs) if refs_fn else None  # None: edited in place; anything else replaces it
    new_inst = inst_fn(inst) if inst_fn else None
    refs = refs if new_refs is None else new_refs
    inst = inst if new_inst is None else new_inst
    (dst / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    (dst / "instances.json").write_text(json.dumps(inst))
    return dst


def _each_ann(edit):
    def fn(inst):
        for a in inst["annotations"]:
            edit(a)
    return fn


def _each_sentence(text):
    def fn(refs):
        for r in refs:
            for s in r["sentences"]:
                s["sent"] = s["raw"] = text
    return fn


def _uncompressed_rle(a):
    from pycocotools import mask as mask_utils

    m = mask_utils.decode(a["segmentation"])
    flat = m.flatten(order="F")
    runs, value, count = [], 0, 0
    for v in flat:
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    runs.append(count)
    a["segmentation"] = {"size": list(m.shape), "counts": [int(r) for r in runs]}


def _box_polygon(a):
    x, y, w, h = a["bbox"]
    a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]


#: case -> (refs edit, instances edit, outcome, what the error or warning names)
REFER_CASES = {
    "polygon masks": (None, _each_ann(_box_polygon), "ok", ""),
    "uncompressed RLE": (None, _each_ann(_uncompressed_rle), "ok", ""),
    "empty polygon list": (None, _each_ann(lambda a: a.update(segmentation=[])), "ok", ""),
    "degenerate polygon": (None, _each_ann(lambda a: a.update(segmentation=[[1, 1, 1, 1, 1, 1]])), "ok", ""),
    "polygon of two points": (None, _each_ann(lambda a: a.update(segmentation=[[1, 1, 5, 5]])), "error",
                              "fewer than 3 points"),
    "polygons reaching outside the image":
    (None, _each_ann(lambda a: a.update(segmentation=[[-200, -150, 40, 2, 60,
                                                                                              50, 5, 60]])),
                                            "warns", "are clipped to it"),
    "no segmentation": (None, _each_ann(lambda a: a.update(segmentation=None)), "error",
                        "has a segmentation that cannot be decoded"),
    "garbage RLE":
    (None, _each_ann(lambda a: a.update(segmentation={"size": [64, 64], "counts": 7})), "error",
                    "has a segmentation that cannot be decoded"),
    "RLE of another size":
    (None, _each_ann(lambda a: a.update(segmentation={"size": [10, 10], "counts": [100]})),
                            "error", "decodes to a 10 x 10 mask but its image is 64 x 64"),
    "a ref naming a missing annotation": (lambda refs: refs[1].update(ann_id=10**6), None, "warns",
                                          "names a missing annotation/image; skipped"),
    "every ref naming a missing annotation":
    (lambda refs: [r.update(ann_id=10**6) for r in refs] and None, None, "error",
                                              "no sentences in split 'val'"),
    "duplicate annotation ids": (None, lambda inst: inst["annotations"].append(dict(inst["annotations"][0])),
                                 "error", "holds annotation id 1 twice"),
    "duplicate image ids": (None, lambda inst: inst["images"].append(dict(inst["images"][0])), "error",
                            "holds image id 1 twice"),
    "duplicate ref ids": (lambda refs: refs.append(dict(refs[0])), None, "error", "holds ref_id 1 twice"),
    "duplicate sentence ids":
    (lambda refs: refs[1]["sentences"][0].update(sent_id=refs[0]["sentences"][0]["sent_id"]),
                               None, "error", "twice"),
    "a ref without its split":
    (lambda refs: refs[0].pop("split") and None, None, "error", "ref #0 (ref_id 1) has no 'split'"),
    "a ref without sentences": (lambda refs: refs[1].update(sentences=[]), None, "ok", ""),
    "annotations without segmentation": (None, _each_ann(lambda a: a.pop("segmentation")), "error",
                                         "annotation 1 has no segmentation field"),
    "an image without its height": (None, lambda inst: inst["images"][0].pop("height") and None, "error",
                                    "has no height field"),
    "no refs": (lambda refs: [], None, "error", "holds no refs"),
    "a pickle of a dict": (lambda refs: {"refs": refs}, None, "error", "does not hold a list of refs"),
    "instances as a list": (None, lambda inst: [inst], "error", "has no 'images' list"),
    "empty sentences": (_each_sentence(""), None, "ok", ""),
    "whitespace sentences": (_each_sentence("  \t "), None, "ok", ""),
    "sentences far past 77 tokens": (_each_sentence(LONG), None, "ok", ""),
    "emoji sentences": (_each_sentence("🐶 the dog 🐕‍🦺"), None, "ok", ""),
    "non-Latin sentences": (_each_sentence("左边的红色圆圈"), None, "ok", ""),
    "a folder with spaces and non-ASCII characters": (None, None, "ok", ""),
}
#: the cases that retention (refs and images only) reads; it never opens instances.json
RETENTION_CASES = ["a ref without its split", "a ref without sentences", "no refs", "a pickle of a dict",
                   "duplicate ref ids", "empty sentences", "whitespace sentences",
                   "sentences far past 77 tokens",
                   "emoji sentences", "non-Latin sentences", "a folder with spaces and non-ASCII characters"]


def _refer_case(case: str, toy_refer: Path, tmp_path: Path) -> Path:
    refs_fn, inst_fn, _, _ = REFER_CASES[case]
    name = "réfer dir with spaces" if case.startswith("a folder") else "refer"
    return _edit_refer(toy_refer, tmp_path / name, refs_fn, inst_fn)


def _check_outcome(case: str, command: str, rc: int, captured, caplog, out: Path,
                   table: str) -> pd.DataFrame | None:
    outcome, names = REFER_CASES[case][2:]
    if outcome == "error":
        _assert_error(rc, captured.err, command, names, out)
        return None
    assert rc == 0, captured.err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
              and r.name.startswith("litelvlm")]
    assert any(names in w for w in warned) if outcome == "warns" else not warned, warned
    df = pd.read_parquet(out / table)
    numbers = df.select_dtypes("number")
    assert len(df) and np.isfinite(numbers.to_numpy(dtype=float)).all(), numbers.describe()
    return df


@pytest.mark.usefixtures("one_glamm_pipeline")
@pytest.mark.parametrize("case", REFER_CASES)
def test_eval_grounding_on_odd_refer_folders(case, toy_refer, tmp_path, capsys, caplog):
    refer = _refer_case(case, toy_refer, tmp_path)
    out = tmp_path / "out"
    rc = main(["eval-grounding", "--refer-dir", str(refer), "--out", str(out), "--model", "tiny-random:0",
               "--limit-images", "1", "--methods", "litelvlm", "--budgets", "32", "--threads", "1"])
    df = _check_outcome(case, "eval-grounding", rc, capsys.readouterr(), caplog, out, "grounding.parquet")
    if df is not None and case in ("empty polygon list", "degenerate polygon"):
        assert (df["gt_area"] == 0).all()  # an empty referent: IoU 0 (prediction only), never NaN


@pytest.mark.parametrize("case", RETENTION_CASES)
def test_retention_on_odd_refer_folders(case, toy_refer, tmp_path, capsys, caplog):
    refer = _refer_case(case, toy_refer, tmp_path)
    out = tmp_path / "out"
    rc = main(
        ["retention", "--refer-dir", str(refer), "--out", str(out), "--limit-images", "1", "--budgets", "4",
               "--methods", "litelvlm", "--threads", "1"])
    _check_outcome(case, "retention", rc, capsys.readouterr(), caplog, out, "retention.parquet")


# ---------------------------------------------------------------- a model folder with NaN weights

def _poison(folder: Path, key_part: str) -> str:
    """Set one weight tensor whose name contains ``key_part`` to NaN in every safetensors file; its name."""
    from safetensors.torch import load_file, save_file

    for f in folder.glob("*.safetensors"):
        weights = load_file(str(f))
        name = next((k for k in weights if key_part in k and weights[k].is_floating_point()), None)
        if name is not None:
            weights[name].fill_(float("nan"))
            save_file(weights, str(f), metadata={"format": "pt"})
            return name
    raise AssertionError(f"no weight named like {key_part!r} in {folder}")


def test_a_clip_with_nan_weights_is_refused_not_scored(tiny_hf_clip_dir, toy_refer, tmp_path, capsys):
    model = tmp_path / "nan clip"
    shutil.copytree(tiny_hf_clip_dir, model)
    name = _poison(model, "mlp.fc1.weight")
    out = tmp_path / "out"
    rc = main(["retention", "--refer-dir", str(toy_refer), "--out", str(out), "--model", str(model),
               "--limit-images", "1", "--budgets", "4", "--methods", "litelvlm", "--threads", "1"])
    _assert_error(rc, capsys.readouterr().err, "retention", f"{str(model)!r} has non-finite weights", out)
    rc = main(["select", "--image", str(_odd_image("1x1", tmp_path)), "--budget", "4", "--text", "x",
               "--model", str(model)])
    _assert_error(rc, capsys.readouterr().err, "select", name, out)


def test_a_glamm_with_nan_weights_is_refused_not_scored(toy_refer, tmp_path, capsys):
    from litelvlm.glamm.checkpoint_writer import save_random_glamm

    model = save_random_glamm(tmp_path / "nan glamm", "tiny", 0, fmt="safetensors")
    name = _poison(model, "text_hidden_fcs")
    out = tmp_path / "out"
    rc = main(["eval-grounding", "--refer-dir", str(toy_refer), "--out", str(out), "--model", str(model),
               "--limit-images", "1", "--methods", "litelvlm", "--budgets", "32", "--threads", "1"])
    _assert_error(rc, capsys.readouterr().err, "eval-grounding", "non-finite weights (NaN or infinity) in "
                  f"{name.removeprefix('model.')!r}", out)


@pytest.mark.usefixtures("one_glamm_pipeline")
@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "I;16"])
def test_eval_grounding_on_odd_image_modes(mode, toy_refer, tmp_path, capsys, caplog):
    """The grounding studies decode every image through ``open_rgb`` (PIL ``convert("RGB")`` after the EXIF
    turn): CMYK, palette, grey+alpha and 16-bit images give finite results (16-bit with the clipping
    warning)."""
    from PIL import Image

    refer = _edit_refer(toy_refer, tmp_path / "refer")
    for path in sorted((refer / "images").iterdir()):
        image = Image.open(path).convert("RGB")
        odd = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
        odd.save(path.with_suffix(".tiff" if mode == "CMYK" else ".png"))
        if path.suffix not in (".tiff", ".png") or (mode == "CMYK" and path.suffix == ".png"):
            path.unlink()
    inst = json.loads((refer / "instances.json").read_text())
    for im in inst["images"]:
        im["file_name"] = str(Path(im["file_name"]).with_suffix(".tiff" if mode == "CMYK" else ".png"))
    (refer / "instances.json").write_text(json.dumps(inst))
    out = tmp_path / "out"
    rc = main(["eval-grounding", "--refer-dir", str(refer), "--out", str(out), "--model", "tiny-random:0",
               "--limit-images", "1", "--methods", "litelvlm", "--budgets", "32", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_parquet(out / "grounding.parquet")
    assert len(df) and np.isfinite(df.select_dtypes("number").to_numpy(dtype=float)).all()
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert ("clip" in warned.lower()) == (mode == "I;16"), warned
