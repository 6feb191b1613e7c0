"""Fixtures of the Sa2VA-InternVL3 tests: the tiny preset's folder and its pipeline, loaded once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def internvl_tiny():
    """``folder`` (the written random ``internvl3-tiny`` folder, seed 0) and ``pipe`` (its pipeline through
    the family registry, with eager attention: what the official code computes without ``flash_attn``)."""
    from litelvlm.lvlm.numerics import Numerics
    from litelvlm.registry.families import load_pipeline
    from litelvlm.sa2va.internvl.checkpoint import random_internvl_dir

    folder = random_internvl_dir("internvl3-tiny", 0)
    pipe = load_pipeline(str(folder), numerics=Numerics.for_protocol("official", attn="eager"))
    return SimpleNamespace(folder=folder, pipe=pipe)
