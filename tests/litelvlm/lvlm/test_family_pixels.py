"""``GroundingPipeline.pixels``, the CPU part of an image's preparation that a loader thread runs ahead: the
contract's default hands the image back (``prepare_image`` does all of it), and a family that overrides it
has a test proving ``prepare_image`` of its pixels equal to ``prepare_image`` of the image."""

from __future__ import annotations

import importlib
from pathlib import Path

from PIL import Image

from litelvlm.lvlm.family import GroundingPipeline
from litelvlm.registry.families import family_names, get_family

ROOT = Path(__file__).resolve().parents[3]
#: the families that split off their pixels, and the test that proves them equal
#: (a subclass inheriting one, as Sa2VA-Qwen3-VL's, runs in its test too)
PROVEN = {"GlammPipeline": "tests/litelvlm/glamm/test_pipeline_pixels.py",
          **{name: "tests/litelvlm/qwen/test_pixels.py" for name in ("Sa2VAPipeline", "Sa2VAInternVLPipeline",
                                                                     "UniPixelPipeline")}}


def test_the_default_hands_the_image_back():
    image = Image.new("RGB", (5, 3))
    assert GroundingPipeline.pixels(object(), image) is image


def _pipelines() -> set[type]:
    """Every pipeline class of litelvlm (each ``*pipeline*`` module imported), subclasses included."""
    for name in family_names():
        get_family(name)
    for path in (ROOT / "litelvlm").rglob("*pipeline*.py"):
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    found, todo = set(), [GroundingPipeline]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return {cls for cls in found if cls.__module__.startswith("litelvlm.")}   # not the tests' own


def test_a_pipeline_prepares_from_the_pixels_it_makes():
    """A pipeline that makes pixels (not the default) prepares its images where those pixels are made or in
    an ancestor: a subclass overriding ``prepare_image`` alone (UniPixel's video pipeline) would be handed
    pixels it does not read, so it keeps the default."""
    def owner(cls, name):
        return next(c for c in cls.__mro__ if name in vars(c))

    wrong = [cls.__name__ for cls in _pipelines() if cls.pixels is not GroundingPipeline.pixels
             and not issubclass(owner(cls, "pixels"), owner(cls, "prepare_image"))]
    assert not wrong, f"prepare_image overridden below the pixels it is handed: {wrong}"


def test_every_family_that_splits_off_its_pixels_is_proven_equal():
    assert len(_pipelines()) >= 5
    # where a pipeline's pixels come from: its own class's, or an ancestor's that a test proves
    owners = {next(c.__name__ for c in cls.__mro__ if "pixels" in vars(c)) for cls in _pipelines()
              if cls.pixels is not GroundingPipeline.pixels}
    assert owners == set(PROVEN)
    assert all((ROOT / path).is_file() for path in PROVEN.values())
