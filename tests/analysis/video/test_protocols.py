"""``litelvlm eval-video --dataset mevis|ref-youtube-vos`` (``analysis.video.protocols``) against the official
code.

* MeViS ``valid_u``: the run's J, F, J&F equal MeViS's ``tools/eval_mevis.py`` (henghuiding/MeViS
  @7c0620b9dc0ab7802747957f221674f175c8a47b; transcribed below, its ``tools/metrics.py`` being the DAVIS file
  whose transcription ``tests/litelvlm/video/test_metrics.py`` holds) run on the PNGs of the run's own
  prediction zip and the layout's ``mask_dict.json``.
* Refer-YouTube-VOS ``valid``: no J&F on disk or on screen but the server's note; the zip holds exactly the
  files VideoGLaMM's writer (mbzuai-oryx/VideoGLaMM @6b15b1e, ``VideoGLaMM/eval_mevis.py`` L182-199,
  transcribed below) writes, in the ``Annotations/<video>/<exp_id>/`` folder of Sa2VA's ``mask_save``
  (bytedance/Sa2VA @9832e1a, ``projects/sa2va/evaluation/sa2va_eval_ref_vos.py`` L35-44), byte for byte as
  images.

The layouts are written here (a few frames of odd sizes); the default tests use a fake video path whose masks
are known (the ground truth shifted), the slow one the tiny random families.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from litelvlm.cli import main
from tests.analysis.video.test_compute_budgets import FakeEval, FakeRunner
from tests.litelvlm.video.test_metrics import db_eval_boundary, db_eval_iou

SIZES = [(37, 29), (41, 23)]   # (W, H) of each video: odd sizes


def _rle(mask: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": r["size"], "counts": r["counts"].decode()}


def _frames(root: Path, video: str, size: tuple[int, int], n: int, rng) -> list[str]:
    names = [f"{t:05d}" for t in range(n)]
    (root / video).mkdir(parents=True)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
            root / video / f"{name}.jpg")
    return names


def _box(size, t, k) -> np.ndarray:
    m = np.zeros((size[1], size[0]), bool)
    m[2 + k * 5:10 + k * 5, 3 + 2 * t + k:14 + 2 * t] = True
    return m


def write_mevis(root: Path, split: str = "valid_u", exps: int = 3, frames: int = 3) -> dict:
    """A tiny MeViS layout: two videos (``frames`` and one more), the first ``exps`` of three expressions (of
    one object, of two, of the other), a null RLE (the second object absent from frame 0)."""
    rng = np.random.default_rng(0)
    videos, masks = {}, {}
    anno = 0
    for v, size in enumerate(SIZES):
        video = f"vid{v}"
        names = _frames(root / split / "JPEGImages", video, size, frames + v, rng)
        ids = []
        for k in range(2):
            masks[str(anno)] = [None if (k == 1 and t == 0) else _rle(_box(size, t, k))
                                for t in range(len(names))]
            ids.append(anno)
            anno += 1
        every = {"0": {"exp": "The Left Thing", "obj_id": [0], "anno_id": [ids[0]]},
                 "1": {"exp": "both things", "obj_id": [0, 1], "anno_id": ids},
                 "2": {"exp": "the other", "obj_id": [1], "anno_id": [ids[1]]}}
        videos[video] = {"expressions": dict(list(every.items())[:exps]), "frames": names}
    (root / split / "meta_expressions.json").write_text(json.dumps({"videos": videos}))
    (root / split / "mask_dict.json").write_text(json.dumps(masks))
    return videos


def write_ytvos(root: Path) -> dict:
    """A tiny Refer-YouTube-VOS layout: valid's meta file lists a test video too (dropped), frames every 5."""
    rng = np.random.default_rng(1)
    videos = {}
    for v, size in zip(("b1", "a0"), SIZES, strict=True):
        frames = _frames(root / "valid" / "JPEGImages", v, size, 3, rng)
        frames = [f"{5 * int(f):05d}" for f in frames]
        for old, new in zip(sorted(os.listdir(root / "valid" / "JPEGImages" / v)), frames, strict=True):
            os.rename(root / "valid" / "JPEGImages" / v / old,
                      root / "valid" / "JPEGImages" / v / f"{new}.jpg")
        videos[v] = {"expressions": {"0": {"exp": "a cat"}, "1": {"exp": "the dog on the left"}},
                     "frames": frames}
    test = {"t9": {"expressions": {"0": {"exp": "x"}}, "frames": ["00000"]}}
    for split, vids in (("valid", {**videos, **test}), ("test", test)):
        (root / "meta_expressions" / split).mkdir(parents=True)
        (root / "meta_expressions" / split / "meta_expressions.json").write_text(json.dumps({"videos": vids}))
    return videos


class ShiftRunner(FakeRunner):
    """Each expression's ground truth moved one pixel right (a split with masks), or a box of its own
    (without)."""

    def expression(self, rec, method, budget):
        import torch

        self.seen["expression"].append((rec.video, method, budget))
        if rec.has_masks:
            m = np.roll(np.stack([rec.mask(i) for i in range(len(rec.frames))]), 1 + (budget.tokens < 100),
                        axis=2)
        else:
            w, h = rec.frame_size(0)
            m = np.stack([_box((w, h), t, int(rec.exp_id)) for t in range(len(rec.frames))])
        return torch.from_numpy(m).float(), budget.tokens, {"llm_visual_tokens": 3328}


class ShiftEval(FakeEval):
    def runner(self, a):
        return ShiftRunner(self.seen)


@pytest.fixture
def shift(monkeypatch) -> ShiftEval:
    import analysis.video.compute as compute
    import analysis.video.options as options

    ev = ShiftEval()
    monkeypatch.setattr(options, "video_eval", lambda model: ev)
    monkeypatch.setattr(compute, "video_eval", lambda model: ev)
    return ev


# ----------------------------------------------------------------------------------------------
# Official code, transcribed
# ----------------------------------------------------------------------------------------------

def eval_mevis(mevis_pred_path: str, exp_dict: dict, mask_dict: dict) -> dict:
    """MeViS tools/eval_mevis.py ``eval_queue`` L24-53: per expression (J, F) from the prediction PNGs
    ``<pred>/<video>/<exp>/<frame>.png`` and the ground truth summed from ``mask_dict``."""
    out_dict = {}
    for vid_name in exp_dict:
        vid = exp_dict[vid_name]
        for exp in vid["expressions"]:
            exp_name = f"{vid_name}_{exp}"
            if not os.path.exists(f"{mevis_pred_path}/{vid_name}"):
                out_dict[exp_name] = [0, 0]
                continue
            pred_0_path = f"{mevis_pred_path}/{vid_name}/{exp}/{vid['frames'][0]}.png"
            pred_0 = cv2.imread(pred_0_path, cv2.IMREAD_GRAYSCALE)
            h, w = pred_0.shape
            vid_len = len(vid["frames"])
            gt_masks = np.zeros((vid_len, h, w), dtype=np.uint8)
            pred_masks = np.zeros((vid_len, h, w), dtype=np.uint8)
            anno_ids = vid["expressions"][exp]["anno_id"]
            for frame_idx, frame_name in enumerate(vid["frames"]):
                for anno_id in anno_ids:
                    mask_rle = mask_dict[str(anno_id)][frame_idx]
                    if mask_rle:
                        gt_masks[frame_idx] += mask_utils.decode(mask_rle)
                pred_masks[frame_idx] = cv2.imread(f"{mevis_pred_path}/{vid_name}/{exp}/{frame_name}.png",
                                                   cv2.IMREAD_GRAYSCALE)
            j = db_eval_iou(gt_masks, pred_masks).mean()
            f = db_eval_boundary(gt_masks, pred_masks).mean()
            out_dict[exp_name] = [j, f]
    return out_dict


def mevis_summary(output_dict: dict) -> tuple[float, float, float]:
    """MeViS tools/eval_mevis.py L89-94."""
    j = [output_dict[x][0] for x in output_dict]
    f = [output_dict[x][1] for x in output_dict]
    return np.mean(j), np.mean(f), (np.mean(j) + np.mean(f)) / 2


def videoglamm_writer(save_dir: Path, video_name: str, exp_id: str, frame_ids: list[str],
                      video_segments: dict):
    """VideoGLaMM eval_mevis.py L182-199 (ReferYouTubeVOS: the frame's id as the file name, L191-192)."""
    for t, pred_mask in video_segments.items():
        for _obj_id, pred_mask_i in pred_mask.items():
            pred_mask_i = pred_mask_i > 0
            out_dir = os.path.join(save_dir, video_name, exp_id)
            os.makedirs(out_dir, exist_ok=True)
            output_path = os.path.join(out_dir, f"{frame_ids[t]}.png")
            mask_array = (pred_mask_i * 255).astype(np.uint8)
            Image.fromarray(mask_array).save(output_path)
            break


# ----------------------------------------------------------------------------------------------

def test_mevis_valid_u_is_scored_as_the_official_script_scores_the_runs_own_pngs(tmp_path, shift, capsys):
    data = tmp_path / "mevis"
    videos = write_mevis(data)
    out = tmp_path / "run"
    assert main(["eval-video", "--out", str(out), "--dataset", "mevis", "--video-dir", str(data), "--methods",
                 "litelvlm", "--budgets", "196,81", "--n-boot", "10"]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576), ("litelvlm", 196), ("litelvlm", 81)]
    mask_dict = json.loads((data / "valid_u" / "mask_dict.json").read_text())
    for _, row in s.iterrows():
        pred = tmp_path / f"pred_{row.method}_{row.budget}"
        with zipfile.ZipFile(out / "predictions" / f"{row.method}@{row.budget}.zip") as z:
            z.extractall(pred)
        official = eval_mevis(str(pred / "Annotations"), videos, mask_dict)
        assert len(official) == 6 and row.expressions == 6 and row.objects == 6 and row.videos == 2
        j, f, jf = mevis_summary(official)
        assert (row.J, row.F, row["J&F"]) == pytest.approx((j, f, jf), abs=1e-12)
        assert 0 < row.J < 1   # the shift makes a score that is neither 0 nor 1
    e = pd.read_parquet(out / "expressions.parquet")
    assert e.sentence.iloc[0] == "The Left Thing" and set(e.anno_set) == {0}
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "mevis" and config["split"] == "valid_u" and "anno_sets" not in config
    assert "server" not in capsys.readouterr().out


def test_ref_youtube_vos_valid_writes_the_servers_zip_and_no_local_number(tmp_path, shift, capsys):
    data = tmp_path / "ytvos"
    videos = write_ytvos(data)
    out = tmp_path / "run"
    assert main(["eval-video", "--out", str(out), "--dataset", "ref-youtube-vos", "--video-dir", str(data),
                 "--methods", "fastv", "--budgets", "81", "--n-boot", "10"]) == 0
    said = capsys.readouterr().out
    assert ("J&F comes from the official evaluation server" in said
            and "no J, F or J&F is computed here" in said)
    assert not (out / "summary.csv").exists() and not (out / "comparisons.csv").exists()
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.predictions) == ["predictions/none@576.zip", "predictions/fastv@81.zip"]
    assert "J&F" not in sub.columns and list(sub.expressions) == [4, 4] and list(sub.videos) == [2, 2]
    assert pd.read_parquet(out / "expressions.parquet")["J&F"].isna().all()
    assert [v for v, _, _ in shift.seen["expression"]][:1] == ["a0"]   # valid less test, sorted
    for zname in sub.predictions:
        official = tmp_path / "official" / zname
        for video in ("a0", "b1"):   # the runner's masks through VideoGLaMM's writer
            size = Image.open(data / "valid" / "JPEGImages" / video
                              / f"{videos[video]['frames'][0]}.jpg").size
            for exp_id in videos[video]["expressions"]:
                segments = {t: {0: _box(size, t, int(exp_id)).astype(float)} for t in range(3)}
                videoglamm_writer(official / "Annotations", video, exp_id, videos[video]["frames"], segments)
        with zipfile.ZipFile(out / zname) as z:
            names = sorted(z.namelist())
            want = sorted(str(p.relative_to(official)) for p in official.rglob("*.png"))
            assert names == want and len(names) == 12
            for name in names:
                ours = Image.open(io.BytesIO(z.read(name)))
                theirs = Image.open(official / name)
                assert ours.mode == theirs.mode == "L"
                assert np.array_equal(np.array(ours), np.array(theirs))
    first = (out / sub.predictions[1]).read_bytes()
    assert main(["eval-video", "--out", str(out), "--dataset", "ref-youtube-vos", "--video-dir", str(data),
                 "--methods", "fastv", "--budgets", "81", "--n-boot", "10"]) == 0
    assert (out / sub.predictions[1]).read_bytes() == first   # resumed from the parts, the same bytes


@pytest.mark.odd_case("bad input", "eval-video: a split the --dataset lacks, MeViS or Refer-YouTube-VOS "
                      "without --video-dir", "eval-video", "one line naming the option, exit 2, nothing "
                      "written")
@pytest.mark.parametrize("argv,named",
                         [(["--dataset", "mevis", "--split", "test", "--video-dir", "."], "--split"),
                                        (["--dataset", "mevis"], "--video-dir")])
def test_refusals(tmp_path, capsys, argv, named):
    out = tmp_path / "run"
    assert main(["eval-video", "--out", str(out), *argv]) == 2
    assert named in capsys.readouterr().err and not out.exists()


# three tiny random families on MeViS valid_u and Refer-YouTube-VOS valid (about 3 CPU-minutes)
@pytest.mark.slow
@pytest.mark.parametrize("model",
                         ["videoglamm-tiny-random:0", "unipixel-tiny-random:5", "sa2va-tiny-random:0"])
def test_every_video_family_on_both_layouts(tmp_path, model, monkeypatch, capsys):
    monkeypatch.setenv("LITELVLM_CACHE", str(tmp_path / "cache"))
    videos = write_mevis(tmp_path / "mevis", exps=2, frames=2)
    out = tmp_path / "mevis_run"
    assert main(["eval-video", "--model", model, "--out", str(out), "--dataset", "mevis", "--video-dir",
                 str(tmp_path / "mevis"), "--methods", "fastv", "--budgets", "81", "--n-boot", "10"]) == 0
    s = pd.read_csv(out / "summary.csv")
    mask_dict = json.loads((tmp_path / "mevis" / "valid_u" / "mask_dict.json").read_text())
    for _, row in s.iterrows():
        pred = tmp_path / f"pred_{row.method}"
        with zipfile.ZipFile(out / "predictions" / f"{row.method}@{row.budget}.zip") as z:
            z.extractall(pred)
        j, f, jf = mevis_summary(eval_mevis(str(pred / "Annotations"), videos, mask_dict))
        assert (row.J, row.F, row["J&F"]) == pytest.approx((j, f, jf), abs=1e-12)
    write_ytvos(tmp_path / "ytvos")
    out = tmp_path / "ytvos_run"
    assert main(
        ["eval-video", "--model", model, "--out", str(out), "--dataset", "ref-youtube-vos", "--video-dir",
                 str(tmp_path / "ytvos"), "--methods", "fastv", "--budgets", "81"]) == 0
    assert "J&F comes from the official evaluation server" in capsys.readouterr().out
    with zipfile.ZipFile(out / "predictions" / "fastv@81.zip") as z:
        assert len(z.namelist()) == 12   # 2 videos x 2 expressions x 3 frames
