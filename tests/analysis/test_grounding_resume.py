"""`litelvlm eval-grounding`: seeded official protocol, resuming, unreadable images, bad arguments."""

from __future__ import annotations

import pandas as pd
import pytest

import analysis.grounding.compute as grounding
from tests.fixtures.cli import run_grounding as _run

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def test_official_is_deterministic(coco128, tmp_path):
    args = ("--protocol", "official", "--limit", 1, "--methods", "none,litelvlm", "--budgets", 16)
    assert _run(coco128, tmp_path / "a", *args) == 0
    assert _run(coco128, tmp_path / "b", *args) == 0
    a = pd.read_parquet(tmp_path / "a" / "grounding.parquet")
    pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "b" / "grounding.parquet"))
    assert (tmp_path / "a" / "summary.csv").read_text() == (tmp_path / "b" / "summary.csv").read_text()
    assert _run(coco128, tmp_path / "c", *args[:-4], "--seed", 3, *args[-4:]) == 0
    c = pd.read_parquet(tmp_path / "c" / "grounding.parquet")
    assert set(c["sent_id"]) != set(a["sent_id"]) or list(c["sentence"]) != list(a["sentence"]) or \
        not c["iou"].equals(a["iou"])


def test_interrupted_run_resumes(coco128, tmp_path, monkeypatch):
    args = ("--protocol", "official", "--image-ids", "34,71,81", "--chunk", 1, "--methods", "none")
    assert _run(coco128, tmp_path / "full", *args) == 0
    real = grounding.evaluate_images
    calls = []

    def flaky(pipe, a, items, pairs, *rest):
        calls.append(items[0][0][0].image_id)   # --chunk 1: one image per call
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(pipe, a, items, pairs, *rest)

    monkeypatch.setattr(grounding, "evaluate_images", flaky)
    assert _run(coco128, tmp_path / "resumed", *args) == 130
    assert len(list((tmp_path / "resumed" / "parts").glob("part-*.json"))) == 1
    assert not (tmp_path / "resumed" / "grounding.parquet").exists()
    seen = []
    monkeypatch.setattr(grounding, "evaluate_images",
                        lambda pipe, a, items,
                        *r: seen.extend(recs[0].image_id for recs, *_ in items) or real(pipe, a, items, *r))
    assert _run(coco128, tmp_path / "resumed", *args) == 0
    assert seen == calls[1:] + [i for i in seen if i not in calls]   # the finished image is not redone
    assert len(seen) == 2 and calls[0] not in seen
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "full" / "grounding.parquet"),
                                  pd.read_parquet(tmp_path / "resumed" / "grounding.parquet"))


def test_changed_configuration_refused(coco128, tmp_path, capsys):
    assert _run(coco128, tmp_path, "--limit", 1, "--methods", "none") == 0
    assert _run(coco128, tmp_path, "--limit", 1, "--methods", "none", "--seed", 1) == 2
    assert "different configuration" in capsys.readouterr().err


def test_unreadable_image_skipped_and_counted(coco128, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for f in (coco128 / "images").iterdir():
        (images / f.name).symlink_to(f)
    bad = images / "COCO_train2014_000000000009.jpg"
    bad.unlink()
    bad.write_bytes(b"this is not a jpeg")
    out = tmp_path / "out"
    assert _run(coco128, out, "--image-dir", images, "--protocol", "official", "--limit", 2,
                "--methods", "none") == 0
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["image_id"].tolist() == [9] and "COCO_train2014_000000000009.jpg" in skipped["path"][0]
    rows = pd.read_parquet(out / "grounding.parquet")
    assert set(rows["image_id"]) == {34}
    assert "1 image(s) skipped" in capsys.readouterr().out
    assert "skipped images: 1" in (out / "summary.txt").read_text()


def test_bad_arguments(coco128, tmp_path, capsys):
    assert _run(coco128, tmp_path / "a", "--budgets", 999, "--methods", "random") == 2
    assert "999" in capsys.readouterr().err
    assert _run(coco128, tmp_path / "b", "--image-ids", 1, "--methods", "none") == 2
    assert "--image-ids" in capsys.readouterr().err
