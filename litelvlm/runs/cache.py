"""A disk cache keyed by a config dict: each entry is one safetensors file, written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors.torch import load_file, save_file

from ..errors import LiteLVLMError, storage_errno
from .checksums import folder_manifest, folder_problem, tensors_digest
from .io import atomic_path

if TYPE_CHECKING:
    import torch


def config_key(config: dict) -> str:
    """A stable short hash of a JSON-serialisable config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def write_once(root: Path, write, verify: bool = True, writer: str | None = None) -> Path:
    """The folder ``root``, written by ``write(folder)`` the first time it is asked for: written aside and
    renamed into place, marked complete with a manifest of its files' sizes and checksums, so concurrent
    processes never read a half-written folder (a stale partial one is replaced; when another process finishes
    first, its identical copy is kept). A complete folder is checked against its manifest before it is
    returned (``verify=False``: the sizes of files over 1 MiB only, for a caller that does not read them now);
    a damaged one is written again, with a warning. A full disk, quota, read-only or unwritable cache is a
    LiteLVLMError naming the folder, whichever library's writer met it
    (:func:`~litelvlm.errors.storage_errno`: safetensors' ``SafetensorError`` is no ``OSError``). ``writer``
    names what writes the folder (a version): it is recorded in the manifest, and a folder another writer left
    is written again as a damaged one is."""
    damaged = None
    if (root / ".complete").exists():
        problem = _folder_problem(root, verify, writer)
        if problem is None:
            return root
        logging.getLogger(__name__).warning("the cached folder %s %s: writing it again", root, problem)
        damaged = _inode(root)
    try:
        return _write_aside(root, write, damaged, writer)
    except LiteLVLMError:
        raise
    except Exception as e:
        if (code := storage_errno(e)) is None:
            raise
        raise LiteLVLMError(f"the cache folder {root} cannot be written ({os.strerror(code)}); nothing "
                            "partial is left there: free some space, or set LITELVLM_CACHE to another "
                            "folder") from None


def _write_aside(root: Path, write, damaged: int | None, writer: str | None = None) -> Path:
    """:func:`write_once`'s write: aside, marked complete (with its ``writer``), renamed into place."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = _aside_name(root, "")
    try:
        tmp.mkdir()
        write(tmp)
        manifest = {**folder_manifest(tmp), **({} if writer is None else {"writer": writer})}
        (tmp / ".complete").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if root.exists() and (not (root / ".complete").exists() or _inode(root) == damaged):
            _remove(root)  # a stale partial folder, or the damaged one (not another process's new copy)
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first; its copy is identical
            if not (root / ".complete").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _folder_problem(root: Path, verify: bool, writer: str | None = None) -> str | None:
    if (root / ".complete").is_symlink():
        return "has a link where its manifest (.complete) should be"
    try:
        manifest = json.loads((root / ".complete").read_text() or "null")
    except (OSError, ValueError):
        manifest = None
    if writer is not None and isinstance(manifest, dict) and manifest.get("writer") != writer:
        return f"was written by {manifest.get('writer') or 'an earlier writer'}, not by {writer}"
    return folder_problem(root, manifest, largest=None if verify else 1 << 20)


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _remove(root: Path) -> None:
    """Move ``root`` aside (readers see the old folder or none), then delete it."""
    aside = _aside_name(root, "old-")
    try:
        aside.mkdir()
        os.replace(root, aside / root.name)
    except OSError:  # gone already, or replaced by another process meanwhile
        pass
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _aside_name(root: Path, tag: str) -> Path:
    """A folder name beside ``root`` no other process or call uses, held before the folder is made (a stop
    landing the moment it exists finds it to remove)."""
    return root.parent / f".{root.name}-{tag}{os.getpid()}-{secrets.token_hex(6)}"


class TensorCache:
    """Tensors stored per item under ``root/<namespace-key>/<item>.safetensors``, each with a SHA-256 of its
    tensors in the file's metadata. An entry whose tensors do not match it (damaged bytes, a damaged header,
    or an entry written without one) is a miss: it is removed and recomputed, and the first one in a cache
    logs a warning."""

    def __init__(self, root: str | os.PathLike, namespace: dict):
        self.namespace = namespace
        self.dir = Path(root) / config_key(namespace)
        #: False once the folder could not be written (read-only, full disk): entries are then not stored
        self.writable = True
        #: entries found damaged or unverifiable (removed, so recomputed)
        self.bad = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            meta = self.dir / "namespace.json"
            if not meta.exists():
                with atomic_path(meta) as tmp:
                    tmp.write_text(json.dumps(namespace, indent=2, sort_keys=True, default=str))
        except OSError as e:
            self._not_writable(e)

    def _not_writable(self, error: Exception) -> None:
        """Go on without storing entries (results are computed as without a cache), saying so once."""
        code = storage_errno(error)
        if self.writable:
            logging.getLogger(__name__).warning(
                "the cache folder %s cannot be written (%s): going on without storing to it; set "
                "LITELVLM_CACHE to a writable folder to keep computed features", self.dir,
                os.strerror(code) if code is not None else getattr(error, "strerror", None) or error)
        self.writable = False

    def _path(self, item: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(item))
        return self.dir / f"{safe}.safetensors"

    def get(self, item: str) -> dict[str, torch.Tensor] | None:
        """The cached tensors for ``item``, or None (a damaged or unverifiable entry counts as a miss and is
        removed)."""
        p = self._path(item)
        if not os.path.lexists(p):
            return None
        if p.is_symlink() or not p.is_file():   # removed itself, never what a link points to
            problem = "is a link or a folder where a cache entry should be"
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        else:
            tensors, problem = _read_entry(p)
            if problem is None:
                return tensors
            p.unlink(missing_ok=True)
        self.bad += 1
        log = logging.getLogger(__name__)
        if self.bad == 1:
            log.warning("the cache entry %s %s: removed, and computed again (further such entries of %s are "
                        "recomputed without a warning)", p, problem, self.dir)
        else:
            log.debug("the cache entry %s %s: removed", p, problem)
        return None

    def put(self, item: str, tensors: dict[str, torch.Tensor]) -> None:
        """Store ``tensors`` for ``item`` atomically (nothing, with one warning, where the folder cannot be
        written: a read-only cache or a full disk never stops a study)."""
        if not self.writable:
            return
        try:
            with atomic_path(self._path(item)) as tmp:
                tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
                save_file(tensors, str(tmp), metadata={CHECKSUM_KEY: tensors_digest(tensors)})
        except Exception as e:
            if not isinstance(e, OSError) and storage_errno(e) is None:
                raise
            self._not_writable(e)


#: the safetensors metadata key holding an entry's :func:`~litelvlm.runs.checksums.tensors_digest`
CHECKSUM_KEY = "litelvlm_sha256"


def _read_entry(path: Path) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """The tensors of a cache entry and what is wrong with them (None: they match their checksum)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            meta = json.loads(f.read(n)).get("__metadata__") or {}
        tensors = load_file(path)
    except Exception:  # noqa: BLE001 - a damaged header or payload fails in many ways
        return None, "cannot be read"
    if not isinstance(meta, dict) or CHECKSUM_KEY not in meta:
        return None, "has no checksum (written by an older litelvlm)"
    if meta[CHECKSUM_KEY] != tensors_digest(tensors):
        return None, "does not match its checksum (damaged bytes)"
    return tensors, None
