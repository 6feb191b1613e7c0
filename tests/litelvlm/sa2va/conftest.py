"""Fixtures of the Sa2VA tests: the tiny Sa2VA-Qwen3-VL, its folder, its modules and its pipeline, loaded
once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def qwen3_tiny():
    """``folder`` (the written random ``qwen3-vl-tiny`` folder, seed 0), ``parts`` (its modules, no hooks) and
    ``pipe`` (its pipeline, DeepStack hooked on its own modules)."""
    from litelvlm.registry.families import load_pipeline
    from litelvlm.sa2va.checkpoint import load_sa2va, random_sa2va_dir

    folder = random_sa2va_dir("qwen3-vl-tiny", 0)
    return SimpleNamespace(folder=folder, parts=load_sa2va(str(folder)), pipe=load_pipeline(str(folder)))



@pytest.fixture(scope="session", params=["sa2va-tiny-random:0", "sa2va-qwen3-vl-tiny-random:0"])
def qwen_sa2va(request):
    """Sa2VA on each Qwen backbone (Qwen2.5-VL, Qwen3-VL), tiny and random, loaded once."""
    from litelvlm.registry.families import load_pipeline

    return load_pipeline(request.param)
