"""Which weights made a number: real, random or toy, decided from a model string in one place.

A model string as the commands take it (``--model``, ``--clip``) is

* ``random`` when it names a random model: ``<arch>-random[:SEED]`` (``tiny-random``,
  ``tiny336-random``, ``vit-l-14-336-random``, ``glamm-7b-random``, and the in-memory random
  models of ``analysis/eff``, named the same way), or a folder written by this project's random
  writers (under the cache's ``random-models/``, a GLaMM ``config.json`` with ``litelvlm_random``
  or the ``litelvlm_arch`` of a small architecture, an open_clip folder with ``litelvlm_arch``);
* ``toy`` when it is the bundled toy CLIP (``litelvlm/toy/weights``) or a ``litelvlm toy-train``
  output (a folder with ``training_metrics.json``);
* ``real`` otherwise (a hub id, an open_clip ``ARCH:TAG``, a checkpoint folder), and for ``None``,
  which the commands read as their real default model.

Every printed summary, ``summary.csv`` (column ``weights``), figure (a footnote) and notebook (a
banner) of results made from random or toy weights says so; real weights carry no mark.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..models.model_spec import ModelSpec
from ..runs.cache_dir import random_models_root
from .families import cards
from .resolved_model import ResolvedClip, ResolvedModel

WeightsKind = Literal["real", "random", "toy"]
#: the order in which several models of one run decide its mark (the least real wins)
_RANK = {"real": 0, "toy": 1, "random": 2}

__all__ = ["WeightsKind", "weights_kind", "weights_banner", "BANNER_MODELS", "run_weights_kind",
           "mark_weights"]


def _toy_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "toy" / "weights"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _folder_kind(path: Path, config: dict | None = None) -> WeightsKind:
    """The kind of a model folder, from where it lies and the markers its writer left (``config``: its
    config.json as its resolution read it)."""
    resolved = path.resolve()
    if resolved == _toy_dir() or (resolved / "training_metrics.json").is_file():
        return "toy"
    random_root = random_models_root().resolve()
    if random_root in resolved.parents:
        return "random"
    if "litelvlm_arch" in _read_json(resolved / "open_clip_config.json"):
        return "random"
    cfg = _read_json(resolved / "config.json") if config is None else config
    if "litelvlm_random" in cfg:
        return "random"
    arch = cfg.get("litelvlm_arch")

    if isinstance(arch, dict) and arch.get("name") not in {p for c in cards() for p in c.released_presets}:
        return "random"
    return "real"


def weights_kind(model: str | os.PathLike | None) -> WeightsKind:
    """``"real"``, ``"random"`` or ``"toy"``: what kind of weights the model string ``model`` loads."""
    if model is None:
        return "real"
    spec = ModelSpec.of(model)
    if os.path.isdir(spec.folder):
        # a resolved model's (or CLIP's) config.json as its resolution read it
        return _folder_kind(Path(spec.folder),
                            model.config if isinstance(model, (ResolvedModel, ResolvedClip)) else None)
    return "random" if spec.is_random else "real"


def run_weights_kind(models: Iterable[str | os.PathLike | None]) -> WeightsKind:
    """The kind of a run that used every model in ``models`` (random beats toy beats real)."""
    kinds = [weights_kind(m) for m in models] or ["real"]
    return max(kinds, key=_RANK.__getitem__)


def _shown(model: str | os.PathLike | None) -> str:
    text = str(model)
    path = Path(text.removeprefix("local-dir:"))
    if path.is_dir() and path.resolve() == _toy_dir():
        return "the bundled toy CLIP, litelvlm/toy/weights"
    return text


#: at most this many models are named in a banner; the rest are counted ("and 3 more")
BANNER_MODELS = 4


def _named(models: list[str], kinds: list[WeightsKind], kind: WeightsKind) -> str:
    """The non-real ``models`` as a banner names them: every one, or the first few and how many more; a
    model of another kind than the banner's (toy beside random) says its kind."""
    shown = [_shown(m) + ("" if k == kind else f" [{k}]") for m, k in zip(models, kinds)]
    if len(shown) > BANNER_MODELS:
        rest = len(shown) - (BANNER_MODELS - 1)
        shown = shown[:BANNER_MODELS - 1] + [f"and {rest} more"]
    return ", ".join(shown)


def weights_banner(*models: str | os.PathLike | None) -> str | None:
    """One line saying that numbers made with ``models`` come from random or toy weights; None when
    every model has real weights. Names every model that is not real (each once, in order; past
    :data:`BANNER_MODELS` the first few and how many more), so a figure drawn from several runs
    (two random seeds) names them all."""
    kind = run_weights_kind(models)
    if kind == "real":
        return None
    # each model once, by its text (a resolved model answers from what its resolution read)
    distinct = {str(m): m for m in reversed([m for m in models if m is not None])}
    unreal = [(text, k) for text in dict.fromkeys(str(m) for m in models if m is not None)
              if (k := weights_kind(distinct[text])) != "real"]
    names = _named([m for m, _ in unreal], [k for _, k in unreal], kind)
    if kind == "random":
        return f"RANDOM WEIGHTS ({names}): numbers exercise the pipeline, they are not findings"
    return (f"TOY WEIGHTS ({names}): a small CLIP trained on synthetic scenes; numbers exercise the "
            "pipeline, they are not findings about real models")


def mark_weights(table, *models: str | os.PathLike | None):
    """``table`` (a pandas DataFrame) with a last column ``weights``: the run's kind of weights."""
    return table.assign(weights=run_weights_kind(models))
