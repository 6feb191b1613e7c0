"""Inputs checked at the edge, before native code sees them: segmentations that pycocotools must not decode,
annotation and expression files that are not UTF-8. Each ends in one stderr line naming the file and the cause
(exit 2), never a crash; the CLI runs go through a subprocess with a memory cap, so that a regression is a
failing exit status instead of a killed test session."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from litelvlm.cli import main
from litelvlm.data.refer import load_coco_instances, load_refer, load_refs
from litelvlm.errors import LiteLVLMError
from tests.fixtures.cli import one_error_line as _one_error_line

ROOT = Path(__file__).resolve().parents[2]
#: the environment's say on bytecode, which the capped interpreter's small environment keeps
BYTECODE_SETTINGS = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _with_segmentation(src: Path, dst: Path, segmentation) -> Path:
    """A copy of ``src`` whose first annotation (id 1, image 1, a 64 x 64 image) has ``segmentation``."""
    _copy(src, dst)
    inst = json.loads((dst / "instances.json").read_text())
    assert inst["annotations"][0]["id"] == 1 and inst["images"][0] == {**inst["images"][0], "width": 64,
                                                                       "height": 64}
    inst["annotations"][0]["segmentation"] = segmentation
    (dst / "instances.json").write_text(json.dumps(inst))  # NaN and Infinity as Python's json writes them
    return dst


def _capped_run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``litelvlm ARGV`` in a fresh interpreter with 6 GB of address space (a crash is an exit status
    here)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path),
           # the session's (conftest)
           "LITELVLM_CACHE": os.environ.get("LITELVLM_CACHE", str(tmp_path / "cache")),
           # whether and where bytecode is written, as the user set it (no __pycache__ in the checkout)
           **{k: os.environ[k] for k in BYTECODE_SETTINGS if k in os.environ}}
    return subprocess.run([sys.executable, "-m", "litelvlm.cli", *argv], capture_output=True, text=True,
                          preexec_fn=cap, env=env, cwd=ROOT, timeout=600)


@pytest.mark.parametrize("setting", [{"PYTHONDONTWRITEBYTECODE": "1"}, {"PYTHONPYCACHEPREFIX": "PREFIX"}],
                         ids=["no bytecode", "a bytecode prefix"])
def test_the_capped_interpreter_keeps_the_users_bytecode_setting(setting, tmp_path, monkeypatch):
    """The capped run's small environment carries where (or whether) Python writes bytecode: without it, a
    run under ``PYTHONDONTWRITEBYTECODE=1`` wrote ``__pycache__`` folders into the checkout."""
    for name in BYTECODE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    setting = {k: str(tmp_path) if v == "PREFIX" else v for k, v in setting.items()}
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    seen = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: seen.append(k["env"]))
    _capped_run(["--help"], tmp_path)
    assert {k: v for k, v in seen[0].items() if k.startswith("PYTHON") and k != "PYTHONPATH"} == setting


# ---------------------------------------------------------------- segmentations

#: case -> (segmentation of annotation 1 in a 64 x 64 image, what the error says besides the ids)
BAD_SEGMENTATIONS = {
    "NaN polygon coordinate": ([[float("nan"), 1.0, 10.0, 1.0, 10.0, 10.0]], "non-finite coordinate (nan"),
    "infinite polygon coordinate":
    ([[1.0, 1.0, float("inf"), 1.0, 10.0, 10.0]], "non-finite coordinate (inf"),
    "polygon coordinate past pycocotools' int":
    ([[1.0, 1.0, 1e9, 1.0, 10.0, 10.0]], "that pycocotools' rasteriser can hold"),
    "polygon whose boundary is too long to rasterise":
    ([[1.0, 1.0, 4e6, 1.0, 10.0, 10.0]], "upsampled points"),
    "polygon of 2 points": ([[1.0, 1.0, 10.0, 1.0]], "fewer than 3 points"),
    "polygon of strings": ([["1", "1", "10", "1", "10", "10"]], "not a flat list of numbers"),
    "nested polygon": ([[[1, 1], [10, 1], [10, 10]]], "not a flat list of numbers"),
    "RLE counts past height x width": ({"size": [64, 64], "counts": [0, 10**6]}, "add up to 1000000 pixels"),
    "RLE counts short of height x width": ({"size": [64, 64], "counts": [10, 10]}, "add up to 20 pixels"),
    "negative RLE count": ({"size": [64, 64], "counts": [5000, -904]}, "not a non-negative integer"),
    "NaN RLE count": ({"size": [64, 64], "counts": [float("nan"), 4096]}, "not a non-negative integer"),
    "compressed RLE with bytes outside '0'..'o'": ({"size": [64, 64], "counts": "~~~~"}, "outside '0'..'o'"),
    "compressed RLE cut off mid-number":
    ({"size": [64, 64], "counts": "0o"}, "end in the middle of a number"),
    "compressed RLE past height x width": ({"size": [64, 64], "counts": "`h9"}, "add up to 10000 pixels"),
    "RLE of another size":
    ({"size": [10, 10], "counts": [100]}, "decodes to a 10 x 10 mask but its image is 64 x 64"),
    "RLE size that is not two integers": ({"size": [64], "counts": [4096]}, "not [height, width]"),
    "RLE without counts": ({"size": [64, 64]}, "has no 'counts'"),
    "a number as segmentation": (7, "unknown segmentation format int"),
}


@pytest.mark.odd_case("annotations", "NaN, infinite, non-numeric or nested polygons, a first polygon of at "
                      "most 4 numbers or too large for pycocotools' rasteriser; RLE counts that "
                      "are negative, NaN, short of or past height x width; bad compressed RLE strings; an "
                      "RLE of another size", "load_refer, load_coco_instances (what reversal, "
                      "eval-grounding, importance, sink read)",
                      "one error naming the instances file, the annotation, the image and the cause, raised "
                      "by the loader before pycocotools sees the segmentation")
@pytest.mark.parametrize("loader", ["refer", "coco"])
@pytest.mark.parametrize("case", BAD_SEGMENTATIONS)
def test_a_bad_segmentation_is_refused_by_the_loaders_before_pycocotools(case, loader, toy_refer, tmp_path,
                                                                       monkeypatch):
    import pycocotools.mask

    segmentation, cause = BAD_SEGMENTATIONS[case]
    refer = _with_segmentation(toy_refer, tmp_path / "refer", segmentation)
    for name in ("frPyObjects", "decode", "merge"):  # pycocotools must never see it
        monkeypatch.setattr(pycocotools.mask, name, lambda *a, **k: pytest.fail("pycocotools was called"))
    with pytest.raises(LiteLVLMError) as err:
        load_refer(refer, None) if loader == "refer" else load_coco_instances(refer / "instances.json", None)
    message = str(err.value)
    assert message.startswith(f"instances file {str(refer / 'instances.json')!r}: annotation 1 (image 1) has "
                              "a segmentation that cannot be decoded: "), message
    assert cause in message and "\n" not in message, message


def test_valid_segmentations_pass_the_checks_and_decode_as_before(toy_refer):
    """Every annotation of the toy folder (compressed RLE), and polygons on the image border, decode as
    pycocotools decodes them directly."""
    from pycocotools import mask as mask_utils

    from litelvlm.data.segmentation import check_segmentation, decode_segmentation

    records = load_refer(toy_refer, None)
    for r in records:
        rle = dict(r.segmentation, counts=r.segmentation["counts"].encode())
        np.testing.assert_array_equal(r.mask(), mask_utils.decode(rle).astype(bool))
    border = [[0, 0, 64, 0, 64, 64, 0, 64], [65.5, -1.5, 30, 30, 2, 60]]  # on the edge, and a little outside
    check_segmentation(border, 64, 64)
    want = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(border, 64, 64))).astype(bool)
    np.testing.assert_array_equal(decode_segmentation(border, 64, 64), want)


@pytest.mark.odd_case("annotations", "polygons reaching outside their image ((-200, -150) on a 640 x 480 "
                      "image)",
                      "load_refer, load_coco_instances (what reversal, eval-grounding, importance, sink read)"
                      , "decoded as the official reader decodes them (pycocotools clips them to the image); "
                      "one warning line counting the clipped polygons")
@pytest.mark.parametrize("loader", ["refer", "coco"])
def test_polygons_outside_the_image_are_clipped_as_the_official_reader_does_and_counted(loader, toy_refer,
                                                                                       tmp_path, caplog):
    """REFER's ``getMask`` (sejong-rcv/LiteLVLM @5896153 ``dataset/utils/refcoco_refer.py`` L308-320) decodes
    a polygon list with ``pycocotools.mask.frPyObjects`` and ``decode``, summing the parts; pycocotools'
    rasteriser (``maskApi.c`` ``rleFrPoly``) keeps only the columns and rows inside the image."""
    from pycocotools import mask as mask_utils

    seg = [[-200.0, -150.0, 40.0, 2.0, 60.0, 50.0, 5.0, 60.0], [10.0, 10.0, 30.0, 10.0, 30.0, 30.0],
           [50.0, 50.0, 900.0, 55.0, 60.0, 700.0]]
    refer = _with_segmentation(toy_refer, tmp_path / "refer", seg)
    with caplog.at_level("WARNING"):
        records = (load_refer(refer, None) if loader == "refer"
                   else load_coco_instances(refer / "instances.json", refer / "images"))
    record = next(r for r in records if r.ann_id == 1)
    official = mask_utils.decode(mask_utils.frPyObjects(seg, 64, 64)).sum(axis=2).astype(np.uint8)
    np.testing.assert_array_equal(record.mask(parts="sum"), official)
    np.testing.assert_array_equal(record.mask(), official > 0)
    assert 0 < official.mean() < 1
    lines = [r.getMessage() for r in caplog.records if "clipped" in r.getMessage()]
    assert len(lines) == 1 and "2 polygon(s) of 1 of" in lines[0] and "annotation 1 (image 1)" in lines[0]


@pytest.mark.odd_case("annotations", "a NaN polygon coordinate (pycocotools was killed: SIGSEGV or out of "
                      "memory)", "reversal, eval-grounding, importance",
                      "exit 2, one line naming the instances file, the annotation, the image and the cause")
@pytest.mark.parametrize("command", ["reversal", "eval-grounding", "importance"])
def test_a_nan_polygon_is_one_clear_error_on_every_command_that_decodes_masks(command, toy_refer, tmp_path,
                                                                              capsys):
    """``reversal`` (where the crash was found) runs in a capped subprocess; the others in this process."""
    refer = _with_segmentation(toy_refer, tmp_path / "refer", [[float("nan"), 1.0, 10.0, 1.0, 10.0, 10.0]])
    model = "tiny-random" if command == "reversal" else "tiny-random:0"
    argv = [command, "--refer-dir", str(refer), "--out", str(tmp_path / "out"), "--model", model, "--threads",
            "1"]
    if command == "reversal":
        done = _capped_run(argv, tmp_path)
        line = _one_error_line(done.returncode, done.stderr, command)
    else:
        line = _one_error_line(main(argv), capsys.readouterr().err, command)
    assert str(refer / "instances.json") in line and "annotation 1 (image 1)" in line, line
    assert "non-finite coordinate (nan" in line, line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- text encodings

def _latin1_instances(refer: Path) -> None:
    raw = (refer / "instances.json").read_bytes()
    (refer / "instances.json").write_bytes(
        raw.replace(b'"categories": [{', b'"categories": [{"note": "caf\xe9", ', 1))


def _latin1_refs(refer: Path) -> None:
    """The first sentence stored as a Python 2 byte string with a Latin-1 byte (as an old pickle would hold
    it)."""
    refs = pickle.loads((refer / "refs(unc).p").read_bytes())
    data = pickle.dumps(refs, protocol=2)
    text = refs[0]["sentences"][0]["sent"].encode()
    unicode_op = b"X" + struct.pack("<I", len(text)) + text
    assert unicode_op in data
    byte_op = b"U" + bytes([len(text)]) + text[:-1] + b"\xe9"  # SHORT_BINSTRING, read with ASCII
    (refer / "refs(unc).p").write_bytes(data.replace(unicode_op, byte_op, 1))


@pytest.mark.odd_case("text encodings", "instances or refs file that is not UTF-8 (or ASCII) text",
                      "reversal, retention",
                      "exit 2, one line naming the file, the encoding, the byte and its offset")
@pytest.mark.parametrize("which", ["instances", "refs"])
def test_a_file_that_is_not_utf8_is_one_line_naming_it_and_the_byte(which, toy_refer, tmp_path, capsys):
    refer = _copy(toy_refer, tmp_path / "refer")
    (_latin1_instances if which == "instances" else _latin1_refs)(refer)
    name = "instances.json" if which == "instances" else "refs(unc).p"
    encoding = "UTF-8" if which == "instances" else "ASCII"
    commands = ["reversal", "retention"] if which == "refs" else ["reversal"]
    for command in commands:
        out = tmp_path / f"out-{command}"
        argv = [command, "--refer-dir", str(refer), "--out", str(out), "--threads", "1"]
        line = _one_error_line(main(argv), capsys.readouterr().err, command)
        assert str(refer / name) in line and f"not {encoding} text: byte 0xe9 at offset" in line, line
    with pytest.raises(LiteLVLMError, match=f"not {encoding} text"):
        load_refer(refer, None) if which == "instances" else load_refs(refer / name)


@pytest.mark.odd_case("text encodings", "an expressions file that is not UTF-8", "sink --expressions",
                      "exit 2, one line naming the file, the byte and its offset")
def test_an_expressions_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "val.json"
    raw = b'{"items": [{"image": "a.jpg", "mask": "a.png", "text": "caf\xe9 on the left"}]}'
    path.write_bytes(raw)
    out = tmp_path / "out"
    line = _one_error_line(main(["sink", "--expressions", str(path), "--out", str(out), "--threads", "1"]),
                           capsys.readouterr().err, "sink")
    assert (f"expressions file {str(path)!r} is not UTF-8 text: byte 0xe9 at offset {raw.index(0xE9)}"
            in line), line


def test_utf16_json_with_a_byte_order_mark_reads_as_the_official_binary_json_load(toy_refer, tmp_path):
    """The official REFER code reads instances.json with ``json.load(open(path, "rb"))``: UTF-16 and UTF-32
    files (with their byte-order marks) load too."""
    refer = _copy(toy_refer, tmp_path / "refer")
    inst = json.loads((refer / "instances.json").read_text())
    for c in inst["categories"]:
        c["name"] = "café"
    (refer / "instances.json").write_bytes(json.dumps(inst, ensure_ascii=False).encode("utf-16"))
    records = load_refer(refer, None)
    assert len(records) == len(load_refer(toy_refer, None)) and {r.category for r in records} == {"café"}
