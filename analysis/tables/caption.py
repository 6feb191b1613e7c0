"""The parts of a table's caption that come from its run's record (``config.json``): the model (family, model
string), its weights (random and toy weights said first, in capitals for random ones: their numbers are never
findings), its dtype, and the run's folder under the tree's root. Light: no pandas."""

from __future__ import annotations

import os
from pathlib import Path

from analysis.common.runs.run_tree import Run
from litelvlm.registry.families import card, family_names

#: what a caption says of each kind of weights an identity records
#: (:data:`analysis.common.runs.identity.WEIGHTS`)
WEIGHTS_TEXT = {
    "random": "RANDOM WEIGHTS: the numbers exercise the pipeline, they are not findings",
    "toy": "TOY WEIGHTS (trained here on synthetic scenes): not the paper's model, the numbers are not "
           "findings",
    "checkpoint": "checkpoint weights",
}


def weights_text(run: Run) -> str:
    """What the caption says of the run's weights (an unknown record said as it is)."""
    kind = str(run.identity.get("weights") or "unrecorded")
    return WEIGHTS_TEXT.get(kind, f"weights: {kind}")


def is_random(run: Run) -> bool:
    """Whether the run's numbers come from random or toy weights (then the caption opens with it)."""
    return run.identity.get("weights") in ("random", "toy")


def model_text(run: Run) -> str:
    """``<family's display name> <model>`` (the model string as the run recorded it)."""
    family = str(run.identity.get("family"))
    name = card(family).display_name if family in family_names() else family
    return f"{name} {run.identity.get('model') or 'default'}"


def input_kind(run: Run) -> str:
    """``image`` or ``video``: what the run's model family reads (``image`` for a family not registered)."""
    family = str(run.identity.get("family"))
    return card(family).input if family in family_names() else "image"


def dtype_text(config: dict) -> str:
    """The dtype the model ran in (``model_dtype``, else ``dtype``), or ``dtype unrecorded``."""
    dtype = config.get("model_dtype") or config.get("dtype")
    return str(dtype) if dtype else "dtype unrecorded"


def where(run: Run, root: Path) -> str:
    """The run's folder under the tree's root (``.`` for the root itself), never the machine's path."""
    return Path(os.path.relpath(run.folder, root)).as_posix()


def opening(run: Run) -> str:
    """The caption's first words: the weights first where they are random or toy, then the model and its
    dtype."""
    model = f"{model_text(run)}, {dtype_text(run.config)}"
    if is_random(run):
        return f"{weights_text(run)}. {model}"
    return f"{model} ({weights_text(run)})"


def count(n: object, unit: str) -> str:
    """``n = 3 images`` (``n unrecorded`` where the record has no count)."""
    if not isinstance(n, (int, float)) or n != n:
        return f"n unrecorded ({unit})"
    n = int(n)
    return f"n = {n} {unit if n != 1 else unit.removesuffix('s')}"


__all__ = ["WEIGHTS_TEXT", "count", "dtype_text", "input_kind", "is_random", "model_text", "opening",
           "weights_text", "where"]
