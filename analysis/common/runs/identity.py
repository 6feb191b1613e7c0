"""What a run folder holds, said once in its ``config.json`` under ``identity``: the ``study`` that wrote it,
the model ``family`` and the ``model`` string it ran, and its ``weights`` (``random``, ``toy`` or
``checkpoint``).

``litelvlm figures --results DIR`` reads only this to hand a folder to the figure sets registered for its
study (:mod:`analysis.figures.tree`), and names every figure after the family and model
(:func:`identity_tag`). A CLIP study's model is a CLIP (family ``clip``). Never compared on resume: it follows
from the command and ``--model``.
"""

from __future__ import annotations

import re
from pathlib import Path

from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry.families import resolve
from litelvlm.registry.provenance import weights_kind
from litelvlm.registry.resolved_model import ResolvedModel

#: the key of ``config.json`` that holds the identity
KEY = "identity"
#: every study that writes a run folder, by the name its identity records
STUDIES = ("reversal", "sink", "retention", "grounding", "importance", "efficiency", "validate", "positions",
           "video")
#: the family recorded for a model that no registered model family reads (the CLIP studies' CLIPs)
CLIP_FAMILY = "clip"
#: what :func:`litelvlm.registry.provenance.weights_kind` says, as an identity records it
WEIGHTS = {"real": "checkpoint", "random": "random", "toy": "toy"}


def run_identity(study: str, model: str | ResolvedModel | None, family: str | None = None,
                 weights: str | None = None) -> dict:
    """``{"identity": {...}}`` for a run of ``study`` on ``model`` (family and weights found from the model
    string unless given), to merge into the run's ``config.json``."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}; known: {', '.join(STUDIES)}")
    if model is not None and not isinstance(model, ResolvedModel):
        model = ModelSpec.of(model)  # read once already (a resolved model answers from its resolution)
    if family is None:
        family = CLIP_FAMILY if model is None else _family(model)
    if weights is None:
        weights = WEIGHTS[weights_kind(model)] if model is not None else "checkpoint"
    # written as its text
    return {KEY: {"study": study, "family": family, "model": None if model is None else str(model),
                  "weights": weights}}


def _family(model: ModelSpec | ResolvedModel) -> str:
    """The family of ``model`` as its one resolution finds it (a resolved model's own), or
    :data:`CLIP_FAMILY` for a model of no family."""
    try:
        return resolve(model).family
    except LiteLVLMError:
        return CLIP_FAMILY


def read_identity(config: object) -> dict | None:
    """The identity a run's ``config.json`` (already read) records, or None when it records none (a folder
    written before identities, or not a run folder)."""
    ident = config.get(KEY) if isinstance(config, dict) else None
    if not isinstance(ident, dict) or not all(isinstance(ident.get(k), str) for k in ("study", "family")):
        return None
    return ident


def identity_label(ident: dict) -> str:
    """``family/model`` as a figure shows it (a folder model by its folder name)."""
    model = ident.get("model")
    return f"{ident['family']}/{Path(model).name if model else 'default'}"


def identity_tag(ident: dict) -> str:
    """``family-model`` as a file name carries it, every run of characters other than letters, digits and
    ``.`` as one ``-`` (``glamm-tiny-random-0``); the model alone where it starts with its family's name
    (``unipixel-tiny-random-0``)."""
    family, model = (re.sub(r"[^A-Za-z0-9.]+", "-", part).strip("-")
                     for part in identity_label(ident).split("/", 1))
    return model if model.startswith(family + "-") else f"{family}-{model}"
