"""A random preset's model folder, the one way every family (and CLIP) makes it: built once, written in the
family's real checkpoint layout under ``$LITELVLM_CACHE/random-models/``, reused from there.

* :func:`random_preset_folder`: a family's preset and seed -> its cached folder, named
  ``<family>-<preset>-seed<seed>[-fast]`` (:func:`random_folder_name`; ``-fast`` for a fast-filled full-size
  preset,
  :mod:`litelvlm.models.random_weights`), written the first time by the family's ``save(folder, fill)``;
* :func:`cached_random_folder`: any folder under ``random-models/`` (CLIP's random models, which have no
  fill), written once by :func:`litelvlm.runs.cache.write_once` (aside, checksummed, renamed into place);
* :func:`random_record`: the ``litelvlm_random`` record of the folder's ``config.json`` (these are random
weights);
* :func:`write_weights` and :func:`write_json`: safetensors shards of a size (and their index), straight from
  the tensors' memory with a progress bar over the bytes, and a JSON file, both written atomically.

It imports torch and the safetensors writer: the command-line layer reaches it only after the checks.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import RandomWeightsWarning
from ..runs.cache import write_once
from ..runs.cache_dir import random_models_root
from ..runs.io import atomic_path, shard_by_size
from .random_weights import cache_suffix, progress, resolve_fill
from .safetensors_stream import save_shards

if TYPE_CHECKING:
    import torch

#: the version of what the random folders' writers write: raise it whenever a writer's output changes (a
#: config key, a file; ``tests/litelvlm/models/test_random_models.py`` fails until it is raised), so that a
#: folder an earlier writer left in a user's cache is written again instead of being read as it is
RANDOM_LAYOUT = 2


#: the random models this process has warned of (once per process and model)
_WARNED: set[str] = set()


def in_command() -> bool:
    """Whether a ``litelvlm`` command is running in this process (it prints its own weights banner); read
    without importing the command line."""
    cli = sys.modules.get("litelvlm.cli")
    return bool(getattr(cli, "_DEPTH", 0))


def warn_random_weights(name: str) -> None:
    """Warn once per process and model that ``name`` has random weights, when the library API loads it (a
    command prints its banner instead)."""
    if name in _WARNED or in_command():
        return
    _WARNED.add(name)
    warnings.warn(f"{name} has RANDOM WEIGHTS (built by litelvlm, never trained): its outputs exercise the "
                  "code, they are not findings; load released weights for results", RandomWeightsWarning,
                  stacklevel=3)


def cached_random_folder(name: str, write: Callable[[Path], None], verify: bool = True) -> Path:
    """The folder ``random-models/<name>``, written by ``write(folder)`` the first time it is asked for
    (:func:`litelvlm.runs.cache.write_once`: checked against its checksums when reused; ``verify=False``: its
    sizes); the library API warns once that its weights are random (:func:`warn_random_weights`)."""
    folder = write_once(random_models_root() / name, write, verify=verify, writer=random_writer())
    warn_random_weights(name)
    return folder


def random_writer() -> str:
    """What writes the random folders now: :data:`RANDOM_LAYOUT` and the transformers version (whose
    ``save_pretrained`` writes their configs), recorded in each folder's manifest and checked when it is
    reused."""
    return f"litelvlm random layout {RANDOM_LAYOUT}, transformers {version('transformers')}"


def random_folder_name(family: str, preset: str, seed: int, fill: str) -> str:
    """``<family>-<preset>-seed<seed>``, ``-fast`` appended for a fast-filled model (``fill`` resolved)."""
    return f"{family}-{preset}-seed{seed}{cache_suffix(fill)}"


def random_preset_folder(family: str, preset: str, seed: int, save: Callable[[Path, str], Any],
                         full_size: bool) -> Path:
    """A family's random ``preset`` at ``seed``: its cached folder, written once by ``save(folder, fill)``,
    ``fill`` resolved from ``"auto"`` (:func:`~litelvlm.models.random_weights.resolve_fill`: fast for a
    ``full_size`` preset); later calls reuse the folder whatever device built it."""
    fill = resolve_fill("auto", full_size)
    return cached_random_folder(random_folder_name(family, preset, seed, fill),
                                lambda folder: save(folder, fill))


def random_record(preset: dict[str, Any], seed: int, fill: str, device: Any = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``config.json``'s ``litelvlm_random``: ``preset`` (e.g. ``{"preset": "tiny"}``), the seed, the device
    type it was built on (when given), ``extra``, and ``"fill": "fast"`` for a fast-filled model, in that
    order."""
    record = {**preset, "seed": seed}
    if device is not None:
        record["built_on"] = torch.device(device).type
    record.update(extra or {})
    if fill == "fast":
        record["fill"] = fill
    return record


def write_json(path: Path, obj: dict) -> None:
    """``obj`` as indented JSON (a final newline), written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def write_weights(sd: dict[str, torch.Tensor], path: Path, max_shard_bytes: int | None) -> list[str]:
    """Write ``sd`` in safetensors shards of at most ``max_shard_bytes`` (+ the index when several), each
    tensor straight from its memory (:func:`litelvlm.models.safetensors_stream.save_shards`), a bar over the
    bytes; the file names."""
    sizes = {k: v.numel() * v.element_size() for k, v in sd.items()}
    groups = shard_by_size(sizes, max_shard_bytes)
    names = [f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors" for i in range(len(groups))] \
        if len(groups) > 1 else ["model.safetensors"]
    weight_map = {k: name for name, group in zip(names, groups) for k in group}
    with progress(sum(sizes.values()), f"writing {path.name}") as bar:
        save_shards({name: {k: sd[k] for k in group} for name, group in zip(names, groups)}, path,
                    metadata={"format": "pt"}, bar=bar)
    if len(groups) > 1:
        index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in sd.values())},
                 "weight_map": dict(sorted(weight_map.items()))}
        write_json(path / "model.safetensors.index.json", index)
    return names


__all__ = ["RANDOM_LAYOUT", "RandomWeightsWarning", "cached_random_folder", "in_command",
           "random_folder_name", "random_preset_folder", "random_record",
           "random_writer", "warn_random_weights", "write_json", "write_weights"]
