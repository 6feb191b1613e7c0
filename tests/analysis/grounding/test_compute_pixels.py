"""eval-grounding makes each image's pixels (the family's CPU part of preparing it,
``GroundingPipeline.pixels``) on the loader's worker threads, ahead of the model, and prepares the image from
them; an image whose pixels cannot be made fails where it is prepared, as it did without the loader."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from litelvlm.cli import main
from litelvlm.glamm.pipeline import GlammPipeline, GlammPixels
from tests.fixtures.cli import run_grounding

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def test_the_pixels_are_made_on_the_loader_threads_and_prepared_from(coco128, tmp_path, monkeypatch):
    made, prepared = [], []
    pixels, prepare_image = GlammPipeline.pixels, GlammPipeline.prepare_image

    def spy_pixels(self, image):
        made.append(threading.current_thread().name)
        return pixels(self, image)

    def spy_prepare(self, image, seed=0):
        prepared.append(type(image))
        return prepare_image(self, image, seed)

    monkeypatch.setattr(GlammPipeline, "pixels", spy_pixels)
    monkeypatch.setattr(GlammPipeline, "prepare_image", spy_prepare)
    assert run_grounding(coco128, tmp_path, "--limit", 3, "--methods", "none,litelvlm", "--budgets", 16) == 0
    assert len(made) == 3 and all(name.startswith("litelvlm-decode") for name in made)
    assert prepared == [GlammPixels] * 3
    assert len(pd.read_parquet(tmp_path / "grounding.parquet"))


def test_pixels_that_cannot_be_made_fail_where_the_image_is_prepared(coco128, tmp_path, monkeypatch):
    calls = []

    def broken(self, image):
        calls.append(threading.current_thread().name)
        raise RuntimeError("no pixels")

    monkeypatch.setattr(GlammPipeline, "pixels", broken)
    with pytest.raises(RuntimeError, match="no pixels"):
        run_grounding(coco128, tmp_path, "--limit", 1, "--methods", "none")
    # tried ahead on a loader thread, then again on the model's thread, which raised it
    assert calls[0].startswith("litelvlm-decode") and calls[-1] == threading.current_thread().name


def test_a_paired_clip_the_methods_read_is_loaded_before_the_loader_starts(coco128, tmp_path, monkeypatch):
    """On a family whose CLIP-side methods read a paired CLIP, the CLIP is loaded before the first image's
    pixels are made, so every image's pixels carry its input too."""
    from litelvlm.sa2va.pipeline import Sa2VAPipeline

    carried, pixels = [], Sa2VAPipeline.pixels

    def spy(self, image):
        out = pixels(self, image)
        carried.append(out.clip is not None)
        return out

    monkeypatch.setattr(Sa2VAPipeline, "pixels", spy)
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(tmp_path), "--model",
                 "sa2va-tiny-random:0", "--limit", "3", "--methods", "none,litelvlm", "--budgets", "16"]) == 0
    assert carried == [True] * 3
