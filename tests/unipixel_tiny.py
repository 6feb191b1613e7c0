"""The tiny random UniPixel shared by the LLM-input-space tests (loaded once per test process and dtype)."""

from __future__ import annotations

import copy
import functools

import torch

MODEL = "unipixel-tiny-random:0"


@functools.cache
def tiny_unipixel(dtype: str = "float32", similarity: str = "clip"):
    """``unipixel-tiny-random:0`` in ``dtype``; ``similarity="llm"``: the same weights with LiteLVLM's
    similarity part in the LLM's input space (``clip_similarity="llm"``)."""
    from litelvlm.registry.families import load_pipeline

    if similarity != "clip":
        pipe = copy.copy(tiny_unipixel(dtype))
        pipe.similarity_source = similarity
        return pipe
    return load_pipeline(MODEL, dtype=getattr(torch, dtype))
