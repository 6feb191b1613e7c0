"""A disk cache keyed by a config dict: each entry is one safetensors file, written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .io import atomic_path

if TYPE_CHECKING:
    import torch


def config_key(config: dict) -> str:
    """A stable short hash of a JSON-serialisable config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$LITELVLM_CACHE`` or ``~/.cache/litelvlm``."""
    return Path(os.environ.get("LITELVLM_CACHE", Path.home() / ".cache" / "litelvlm"))


def write_once(root: Path, write) -> Path:
    """The folder ``root``, written by ``write(folder)`` the first time it is asked for: written aside and renamed
    into place, marked complete, so concurrent processes never read a half-written folder (a stale partial one is
    replaced; when another process finishes first, its identical copy is kept)."""
    import shutil
    import tempfile

    if (root / ".complete").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        write(tmp)
        (tmp / ".complete").touch()
        if root.exists() and not (root / ".complete").exists():  # a stale partial folder
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first; its copy is identical
            if not (root / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


class TensorCache:
    """Tensors stored per item under ``root/<namespace-key>/<item>.safetensors``."""

    def __init__(self, root: str | os.PathLike, namespace: dict):
        self.namespace = namespace
        self.dir = Path(root) / config_key(namespace)
        #: False once the folder could not be written (read-only, full disk): entries are then not stored
        self.writable = True
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            meta = self.dir / "namespace.json"
            if not meta.exists():
                with atomic_path(meta) as tmp:
                    tmp.write_text(json.dumps(namespace, indent=2, sort_keys=True, default=str))
        except OSError as e:
            self._not_writable(e)

    def _not_writable(self, error: OSError) -> None:
        """Go on without storing entries (results are computed as without a cache), saying so once."""
        if self.writable:
            logging.getLogger(__name__).warning(
                "the cache folder %s cannot be written (%s): going on without storing to it; set LITELVLM_CACHE "
                "to a writable folder to keep computed features", self.dir, error.strerror or error)
        self.writable = False

    def _path(self, item: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(item))
        return self.dir / f"{safe}.safetensors"

    def get(self, item: str) -> dict[str, torch.Tensor] | None:
        """The cached tensors for ``item``, or None (a corrupt entry counts as a miss and is removed)."""
        p = self._path(item)
        if not p.exists():
            return None
        try:
            from safetensors.torch import load_file

            return load_file(p)
        except Exception:
            p.unlink(missing_ok=True)
            return None

    def put(self, item: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store ``tensors`` for ``item`` atomically (nothing, with one warning, where the folder cannot be
        written: a read-only cache or a full disk never stops a study)."""
        if not self.writable:
            return
        try:
            with atomic_path(self._path(item)) as tmp:
                from safetensors.torch import save_file

                save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        except OSError as e:
            self._not_writable(e)
