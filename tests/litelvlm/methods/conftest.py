"""Fixtures of the method tests: the tiny GLaMM and the tiny Sa2VA, each with one prepared random image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from litelvlm.registry.families import load_pipeline


def _prepared(pipe):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), dtype=np.uint8))
    return pipe, pipe.prepare(image, ["the dog on the left"])


@pytest.fixture(scope="module")
def glamm(tiny_glamm):
    """(the tiny GLaMM, a prepared 200 x 160 random image with one expression)."""
    return _prepared(tiny_glamm)


@pytest.fixture(scope="module")
def sa2va():
    """(the tiny Sa2VA, the same image prepared)."""
    return _prepared(load_pipeline("sa2va-tiny-random:0"))
