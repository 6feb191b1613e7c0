"""Fixtures of the method tests: the tiny GLaMM and the tiny Sa2VA, each with one prepared random image; the
official sides run under the LLaVA-based methods' pins and LiteLVLM's."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from litelvlm.registry.families import load_pipeline
from tests.litelvlm.methods.official_pin import glamm_428, llava_431, llava_437


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


@pytest.fixture(scope="module")
def pinned_431():
    """The official sides run under transformers 4.31.0 (``official_pin.llava_431``, once a process)."""
    return llava_431()


@pytest.fixture(scope="module")
def pinned_437():
    """The official sides run under transformers 4.37.2 (``official_pin.llava_437``, once a process)."""
    return llava_437()


@pytest.fixture(scope="module")
def pinned_428():
    """The official side of LiteLVLM's CLIP reads under transformers 4.28.1 (``official_pin.glamm_428``, once
    a process)."""
    return glamm_428()
