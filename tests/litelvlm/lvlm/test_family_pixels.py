"""``GroundingPipeline.pixels``, the CPU part of an image's preparation that a loader thread runs ahead: the
contract's default hands the image back (``prepare_image`` does all of it), and a family that overrides it
has a test proving ``prepare_image`` of its pixels equal to ``prepare_image`` of the image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.registry.families import family_names, get_family

ROOT = Path(__file__).resolve().parents[3]
#: the families that split off their pixels, and the test that proves them equal
PROVEN = {"GlammPipeline": "tests/litelvlm/glamm/test_pipeline_pixels.py"}


def test_the_default_hands_the_image_back():
    image = Image.new("RGB", (5, 3))
    assert GroundingPipeline.pixels(object(), image) is image


def _pipelines() -> set[type]:
    """Every pipeline class of the registered families (their packages imported), subclasses included."""
    for name in family_names():
        get_family(name)
    found, todo = set(), [GroundingPipeline]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return {cls for cls in found if cls.__module__.startswith("litelvlm.")}   # not the tests' own


def test_every_family_that_splits_off_its_pixels_is_proven_equal():
    assert len(_pipelines()) >= 5
    overriding = {cls.__name__ for cls in _pipelines() if cls.pixels is not GroundingPipeline.pixels}
    assert overriding == set(PROVEN)
    assert all((ROOT / path).is_file() for path in PROVEN.values())
