"""Video folders checked at the edge: every frame and annotation of the videos a run uses is opened (header
only) before anything is written or any model loaded; a missing, unreadable or odd-sized file is one exit-2
line naming it, the same line from ``eval-video`` and ``reversal --video-dir`` (one check,
``litelvlm.video.checks``).

The property test writes random small Ref-DAVIS-layout folders (frame and mask sizes, counts, missing files,
zero frames, palette, greyscale and RGB masks): reading one is a consistent video or a ``LiteLVLMError``,
never another exception, and the check refuses exactly the folders with a defect.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.video.checks import check_videos
from litelvlm.video.datasets import load_ref_davis
from litelvlm.video.records import read_object_ids

VIDEO = "clip-a"


def write_folder(root: Path, frames: list[dict | None], masks: list[dict | None]) -> Path:
    """A Ref-DAVIS ``valid`` split of one video, four expressions of object 1, listing ``len(frames)`` frames:
    frame ``i`` is ``frames[i]`` (``{"size", "mode"}``, None: absent), its annotation ``masks[i]``
    likewise."""
    names = [f"{i:05d}" for i in range(len(frames))]
    exps = {str(k): {"exp": f"the thing, take {k}", "obj_id": "1"} for k in range(4)}
    meta = root / "meta_expressions" / "valid" / "meta_expressions.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"videos": {VIDEO: {"expressions": exps, "frames": names}}}))
    for kind in ("JPEGImages", "Annotations"):
        (root / "valid" / kind / VIDEO).mkdir(parents=True)
    for name, frame, mask in zip(names, frames, masks, strict=True):
        if frame is not None:
            Image.new(frame["mode"], frame["size"], 120).save(root / "valid" / "JPEGImages" / VIDEO
                                                              / f"{name}.jpg")
        if mask is not None:
            w, h = mask["size"]
            ids = np.zeros((h, w), np.uint8)
            ids[: max(1, h // 2), : max(1, w // 2)] = 1
            im = Image.fromarray(ids).convert(mask["mode"]) if mask["mode"] == "RGB" else Image.fromarray(ids)
            if mask["mode"] == "P":
                im = im.convert("P")
                im.putpalette([0, 0, 0, 128, 0, 0] * 128)
            im.save(root / "valid" / "Annotations" / VIDEO / f"{name}.png")
    return root


def _good(n: int = 3, size=(16, 12)) -> tuple[list[dict], list[dict]]:
    return [{"size": size, "mode": "RGB"} for _ in range(n)], [{"size": size, "mode": "P"} for _ in range(n)]


def _broken(case: str, root: Path) -> tuple[Path, str]:
    """A folder with one defect of ``case`` and the text its error names (the file, the cause)."""
    frames, masks = _good()
    ann = root / "valid" / "Annotations" / VIDEO
    jpg = root / "valid" / "JPEGImages" / VIDEO
    if case == "missing annotation":
        masks[2], names = None, f"{ann / '00002.png'}' does not exist"
    elif case == "missing frame":
        frames[1], names = None, f"{jpg / '00001.jpg'}' does not exist"
    elif case == "frames of two sizes":
        frames[1], masks[1] = {"size": (8, 6), "mode": "RGB"}, {"size": (8, 6), "mode": "P"}
        names = f"{jpg / '00001.jpg'}' is 8 x 6 but the first frame"
    elif case == "annotation of another size":
        masks[2], names = {"size": (15, 12), "mode": "P"}, f"{ann / '00002.png'}' is 15 x 12 but its frame"
    elif case == "RGB annotation":
        masks[0], names = {"size": (16, 12), "mode": "RGB"}, f"{ann / '00000.png'}' is a mode RGB image"
    elif case == "zero frames":
        frames, masks, names = [], [], f"video '{VIDEO}'"
    else:
        assert case == "frame not an image"
        names = f"{jpg / '00000.jpg'}' could not be read"
    write_folder(root, frames, masks)
    if case == "frame not an image":
        (jpg / "00000.jpg").write_text("not a jpeg")
    return root, names


CASES = ["missing annotation", "missing frame", "frames of two sizes", "annotation of another size",
         "RGB annotation", "zero frames", "frame not an image"]


@pytest.mark.odd_case("video folders", "a missing, unreadable, odd-sized or RGB frame or annotation; zero "
                      "frames", "load_ref_davis(check_files=True), check_videos",
                      "LiteLVLMError naming the file and the cause")
@pytest.mark.parametrize("case", CASES)
def test_check_videos_names_the_file_and_the_cause(case, tmp_path):
    root, names = _broken(case, tmp_path / "davis")
    records = load_ref_davis(root)   # the folders are there: the lazy reader takes it
    with pytest.raises(LiteLVLMError) as e:
        check_videos(records)
    assert names in str(e.value)
    if case == "zero frames":
        assert "no frames" in str(e.value)
    with pytest.raises(LiteLVLMError, match="^" + re.escape(str(e.value)) + "$"):
        load_ref_davis(root, check_files=True)   # the loader's full check is the same one


def test_check_videos_takes_a_good_folder_and_only_the_videos_given(tmp_path):
    root = write_folder(tmp_path / "davis", *_good(2))
    records = load_ref_davis(root, check_files=True)
    check_videos(records)
    assert len(records) == 4 and records[0].mask(1).sum() == 6 * 8
    (root / "valid" / "Annotations" / VIDEO / "00001.png").unlink()
    check_videos([])   # no video given, nothing read
    with pytest.raises(LiteLVLMError, match="00001.png' does not exist"):
        check_videos(records[:1])


def _error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(
        f"litelvlm {command}: error: "), err
    return lines[0].split(": error: ", 1)[1]


@pytest.mark.odd_case("video folders", "a video folder with a missing frame or annotation, frames of two "
                      "sizes, or no frame", "eval-video, reversal --video-dir",
                      "the same one line from both, naming the file; exit 2; --out not created")
@pytest.mark.parametrize("case",
                         ["missing annotation", "missing frame", "frames of two sizes", "zero frames"])
def test_eval_video_and_reversal_refuse_a_broken_folder_alike_before_writing(case, tmp_path, capsys):
    root, names = _broken(case, tmp_path / "davis")
    said = {}
    for command, argv in {"eval-video": ["--anno-sets", "0", "--methods", "random", "--budgets", "81"],
                          "reversal": ["--n-boot", "20"]}.items():
        out = tmp_path / command
        assert main([command, "--video-dir", str(root), *argv, "--out", str(out)]) == 2
        said[command] = _error_line(capsys.readouterr().err, command)
        assert not out.exists()
    assert said["eval-video"] == said["reversal"] and names in said["reversal"]


@pytest.mark.odd_case("video folders", "a video whose expressions are not four per object", "eval-video",
                      "one line naming the video and the count; exit 2; --out not created")
def test_eval_video_refuses_a_video_without_four_expressions_per_object(tmp_path, capsys):
    root = write_folder(tmp_path / "davis", *_good(2))
    meta = root / "meta_expressions" / "valid" / "meta_expressions.json"
    data = json.loads(meta.read_text())
    del data["videos"][VIDEO]["expressions"]["3"]
    meta.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["eval-video", "--video-dir", str(root), "--anno-sets", "0", "--out", str(out)]) == 2
    assert f"video '{VIDEO}'" in _error_line(capsys.readouterr().err, "eval-video") and not out.exists()


# ---------------------------------------------------------------- random folders

SIZES = st.tuples(st.integers(1, 9), st.integers(1, 9))


@st.composite
def folders(draw) -> tuple[list, list]:
    """Frames and masks of a random small video: mostly one size, sometimes another; some files absent."""
    n = draw(st.integers(0, 3))
    base = draw(SIZES)
    frames, masks = [], []
    for _ in range(n):
        present = draw(st.booleans()) or draw(st.booleans())   # absent one time in four
        size = base if draw(st.integers(0, 3)) else draw(SIZES)
        frames.append({"size": size, "mode": draw(st.sampled_from(["RGB", "L"]))} if present else None)
        present = draw(st.booleans()) or draw(st.booleans())
        size = size if draw(st.integers(0, 3)) else draw(SIZES)
        masks.append({"size": size, "mode": draw(st.sampled_from(["P", "P", "L", "RGB"]))} if present
                     else None)
    return frames, masks


def _expected_ok(frames: list, masks: list) -> bool:
    return bool(frames) and all(f is not None and m is not None for f, m in zip(frames, masks, strict=True)) \
        and len({f["size"] for f in frames}) == 1 and all(m["mode"] in ("P", "L") for m in masks) \
        and all(m["size"] == f["size"] for f, m in zip(frames, masks, strict=True))


@pytest.mark.odd_case("video folders", "random small folders: sizes, counts, missing files, zero frames, "
                      "palette, grey or RGB masks", "load_ref_davis, check_videos (hypothesis)",
                      "a consistent video or a LiteLVLMError, never another exception; refused iff defective")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folders())
def test_random_video_folders_read_consistently_or_are_refused(spec):
    frames, masks = spec
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(Path(tmp) / "davis", frames, masks)
        records = load_ref_davis(root)
        for i in range(len(frames)):   # the lazy readers, unchecked: a result or a LiteLVLMError
            for read in (records[0].frame, records[0].mask):
                try:
                    read(i)
                except LiteLVLMError:
                    pass
        try:
            checked = load_ref_davis(root, check_files=True)
        except LiteLVLMError as e:
            assert not _expected_ok(frames, masks), e
            return
        assert _expected_ok(frames, masks)
        rec = checked[0]
        video = np.stack([np.asarray(rec.frame(i)) for i in range(len(rec.frames))])
        ids = np.stack([read_object_ids(rec.masks.path(rec, i)) for i in range(len(rec.frames))])
        gt = np.stack([rec.mask(i) for i in range(len(rec.frames))])
        (w, h), n = frames[0]["size"], len(frames)
        assert video.shape == (n, h, w, 3) and ids.shape == gt.shape == (n, h, w) and gt.dtype == bool
        assert np.array_equal(gt, ids == 1) and gt[:, 0, 0].all()
