"""A pipeline's captured paths, installed together (this project's options): the LLM prefill
(``--prefill captured``, :mod:`litelvlm.llm.captured`) and the image encoders (``--encoders``,
:mod:`litelvlm.lvlm.encoders`). The studies that run a family call :func:`install_paths` once, after
loading."""

from __future__ import annotations

from ..llm import captured
from . import encoders


def install_paths(pipe, prefill: str, capture: str = "auto", encoders_mode: str = "auto") -> dict:
    """Install ``--prefill captured`` (``capture``: auto or one of ``captured.CAPTURES``, ``-eager`` forms
    included) and ``--encoders`` on ``pipe``; their records ({} where both are eager)."""
    record: dict = {}
    if prefill == "captured":
        record.update(captured.install(pipe.language_model, None if capture == "auto" else capture).record())
    runner = encoders.install(pipe, encoders_mode)
    if runner is not None:
        record.update(runner.record())
    return record


__all__ = ["install_paths"]
