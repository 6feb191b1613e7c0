"""Deferred CLIP loading: a study whose results are all cached never loads the model.

Loading a CLIP model means importing transformers' (or open_clip's) modelling code, which on a
small CPU takes longer than a warm study's own work. What a study needs before its first cache
miss is only the model's *description*: ``describe()`` (the cache namespace), the layer counts
and the preprocessing geometry. The first time a model is loaded with ``defer=True``, that
description is saved to ``<cache>/clip-descriptions/<key>.json``. The key covers the model
string, backend and dtype, the installed transformers/open_clip versions and every local file of
the model (path, size, modification time), so a changed file or library is a new key. Later calls
return a :class:`DeferredClip` built from it; the first use of anything else (preprocessing, a
forward pass, the tokenizer) loads the model, which must then describe itself exactly as saved. A saved
description that is damaged (not JSON, not of the schema :class:`DeferredClip` reads, a folder or a link in
its place, unreadable) is removed with a warning, and the model is loaded and described again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError
from ..machine.versions import dist_version
from ..runs.cache import config_key
from ..runs.cache_dir import default_cache_dir
from ..runs.io import atomic_path
from .files import model_files
from .traces import Geometry

#: the saved attributes besides ``describe()`` (everything a study reads before its first forward)
DESCRIBED = ("vision_layers", "text_layers", "vision_heads", "text_heads", "context_length")

#: bump when the saved description's layout changes
DESCRIPTION_VERSION = 1


def description_path(model: str, resolved: str, backend: str, dtype: Any) -> Path | None:
    """Where the description of this model, backend and dtype is saved (None: no local files)."""
    files = model_files(resolved, backend)
    if not files:
        return None

    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = config_key({"v": DESCRIPTION_VERSION, "model": model, "backend": backend, "dtype": str(dtype),
                      "files": stats,
                      "versions": {d: dist_version(d) for d in ("torch", "transformers", "open_clip_torch")}})
    return descriptions_dir() / f"{key}.json"


def descriptions_dir() -> Path:
    """The cache's folder of saved descriptions, ``<cache>/clip-descriptions``."""
    return default_cache_dir() / "clip-descriptions"


def save_description(clip: Any, path: Path) -> None:
    """Save a loaded backend's description at ``path`` (a read-only cache is skipped silently)."""
    record = {"v": DESCRIPTION_VERSION, "describe": clip.describe(),
              **{k: getattr(clip, k) for k in DESCRIBED}}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(record, indent=1, sort_keys=True))


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists): how descriptions are compared."""
    return json.loads(json.dumps(value))


def read_description(path: Path) -> dict | None:
    """A saved description holding everything :class:`DeferredClip` reads, or None: absent (silently), or
    damaged (removed, with a warning naming it, so that the model is loaded and it is written again)."""
    if not os.path.lexists(path):
        return None
    record = None
    if path.is_symlink() or path.is_dir():
        problem = "a link" if path.is_symlink() else "a folder"
    else:
        try:
            record = json.loads(path.read_bytes())
            problem = description_problem(record)
        except OSError as e:
            problem = f"cannot be read: {e.strerror or e}"
        except ValueError:
            problem = "not valid JSON: truncated or garbled"
    if problem is None:
        return record
    done = "removed, and written again" if _remove(path) else \
        "not removed (outside the cache's clip-descriptions folder): the model is loaded"
    logging.getLogger(__name__).warning("the saved CLIP description %s is damaged (%s): %s", path, problem,
                                        done)
    return None


def description_problem(record: Any) -> str | None:
    """What keeps ``record`` from being a description :class:`DeferredClip` can answer from (None: nothing):
    the version, ``describe`` (its strings, ``grid``, ``geometry``) and each of :data:`DESCRIBED`."""
    if not isinstance(record, dict):
        return "not an object"
    if not _positive_ints([record.get("v")], 1) or record["v"] != DESCRIPTION_VERSION:
        return f"'v' is not {DESCRIPTION_VERSION}"
    describe = record.get("describe")
    if not isinstance(describe, dict):
        return "'describe' is not an object"
    for key in ("model", "backend", "weights_hash", "dtype"):
        if not isinstance(describe.get(key), str):
            return f"describe's {key!r} is not a string"
    if not _positive_ints(describe.get("grid"), 2):
        return "describe's 'grid' is not two positive integers"
    if (problem := _geometry_problem(describe.get("geometry"))) is not None:
        return f"describe's 'geometry' {problem}"
    for key in DESCRIBED:
        if not _positive_ints([record.get(key)], 1):
            return f"{key!r} is not a positive integer"
    return None


def _positive_ints(value: Any, n: int) -> bool:
    return isinstance(value, list) and len(value) == n and all(type(v) is int and v > 0 for v in value)


def _geometry(fields: dict) -> Geometry:
    """The :class:`Geometry` of a saved ``geometry`` (its ``crop`` a list in JSON)."""
    return Geometry(**{**fields, "crop": tuple(fields["crop"])})


def _geometry_problem(fields: Any) -> str | None:
    """What keeps a saved ``geometry`` from building a :class:`Geometry` of the right types (None:
    nothing)."""
    if not isinstance(fields, dict):
        return "is not an object"
    names = {f.name: f.default is dataclasses.MISSING for f in dataclasses.fields(Geometry)}
    if not {k for k, required in names.items() if required} <= set(fields) <= set(names):
        return "does not hold the fields of a Geometry"
    g = Geometry(**fields)
    if not (isinstance(g.mode, str) and _positive_ints([g.resize], 1) and _positive_ints(g.crop, 2)
            and isinstance(g.crop_rounding, str) and isinstance(g.pad_to_square, bool)):
        return "has a field of the wrong type"
    return None


def _remove(path: Path) -> bool:
    """Remove a damaged description: a file or a link, or a folder inside the cache's ``clip-descriptions``
    folder (none elsewhere); whether it is gone."""
    with contextlib.suppress(OSError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        elif path.resolve().parent == descriptions_dir().resolve():
            shutil.rmtree(path)
    return not os.path.lexists(path)


class DeferredClip:
    """A CLIP model that is loaded on first use; until then it answers from its saved description.

    ``name``, ``backend``, ``describe()``, ``weights_hash()``, ``grid``, ``geometry`` and the
    layer/head counts need no model; any other attribute loads it (:meth:`load`) and is read from it.
    """

    def __init__(self, model: str, backend: str, record: dict, path: Path, load: Callable[[], Any]):
        self._load = load   # the load this one stands for (``litelvlm.clip.load_clip`` of the same arguments)
        self._path = path
        self._described = record["describe"]
        self._loaded = None
        self.name = model
        self.backend = backend
        self.grid = tuple(self._described["grid"])
        self.geometry = _geometry(self._described["geometry"])
        for k in DESCRIBED:
            setattr(self, k, record[k])

    @property
    def loaded(self) -> bool:
        """Whether the model itself has been loaded."""
        return self._loaded is not None

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def describe(self) -> dict:
        """The saved ``describe()`` of this model (the loaded model's, as JSON holds it; checked on load)."""
        return as_json(self._described)

    def weights_hash(self) -> str:
        return self._described["weights_hash"]

    def load(self) -> Any:
        """The loaded backend (loaded once); its description (``describe()`` and the layer and head counts)
        must equal the saved one."""
        if self._loaded is None:
            clip = self._load()
            saved = {"describe": self._described, **{k: getattr(self, k) for k in DESCRIBED}}
            if as_json({"describe": clip.describe(), **{k: getattr(clip, k) for k in DESCRIBED}}) != as_json(
                saved):
                self._path.unlink(missing_ok=True)
                raise LiteLVLMError(
                    f"CLIP model {self.name!r} no longer matches its saved description {str(self._path)!r} "
                    "(removed now; run the command again)")
            self._loaded = clip
        return self._loaded

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_loaded", "_load", "_path", "_described"):
            raise AttributeError(name)
        return getattr(self.load(), name)

    def __repr__(self) -> str:
        return f"DeferredClip({self.name!r}, backend={self.backend!r}, loaded={self.loaded})"
