"""Checksums that let the cache find damaged bytes before it uses them.

A tensor entry carries a SHA-256 of its tensors (names, dtypes, shapes and bytes); a folder written once (a
random model checkpoint) carries a manifest of its files' sizes and SHA-256 digests. Large files are hashed in
blocks of
:data:`BLOCK` bytes, in parallel threads (hashlib releases the GIL), so a checkpoint of several shards, or one
big file, is read at disk or hashing speed on every core.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import torch

#: files are hashed in independent blocks of this size (each its own SHA-256)
BLOCK = 64 << 20
_READ = 4 << 20
MANIFEST_VERSION = 1


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _block_digest(path: Path, offset: int, length: int) -> str:
    h = hashlib.sha256()
    buf = memoryview(bytearray(max(1, min(_READ, length))))
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        left = length
        while left:
            n = f.readinto(buf[:min(_READ, left)])
            if not n:  # the file is shorter than it was: the digest differs
                break
            h.update(buf[:n])
            left -= n
    return h.hexdigest()


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _files(folder: Path, skip: str) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() != skip}


def _digests(files: dict[str, tuple[Path, int]]) -> dict[str, list[str]]:
    """Per file, the SHA-256 of each of its :data:`BLOCK`-byte blocks (one digest for an empty file)."""
    tasks = [(rel, path, off, min(BLOCK, size - off))
             for rel, (path, size) in files.items() for off in range(0, max(size, 1), BLOCK)]
    with ThreadPoolExecutor(_workers()) as pool:
        done = list(pool.map(lambda t: _block_digest(t[1], t[2], t[3]), tasks))
    out: dict[str, list[str]] = {rel: [] for rel in files}
    for (rel, *_), digest in zip(tasks, done):
        out[rel].append(digest)
    return out


def folder_manifest(folder: Path, skip: str = ".complete") -> dict:
    """The manifest of every file under ``folder`` but ``skip``: its size and block SHA-256 digests."""
    files = {rel: (p, p.stat().st_size) for rel, p in _files(folder, skip).items()}
    digests = _digests(files)
    return {"v": MANIFEST_VERSION, "algorithm": "sha256", "block": BLOCK,
            "files": {rel: {"size": size, "sha256": digests[rel]} for rel, (_, size) in files.items()}}


def folder_problem(folder: Path, manifest: object, largest: int | None = None,
                   skip: str = ".complete") -> str | None:
    """What differs between ``folder`` and its ``manifest`` (None: nothing): a file missing, added, of another
    size or of other bytes. Files over ``largest`` bytes (None: no limit) are compared by size only."""
    if not (isinstance(manifest, dict) and manifest.get("v") == MANIFEST_VERSION
            and manifest.get("algorithm") == "sha256" and manifest.get("block") == BLOCK
            and isinstance(manifest.get("files"), dict)):
        return "has no checksums (written by an older litelvlm)"
    recorded: dict = manifest["files"]
    present = _files(folder, skip)
    if missing := sorted(set(recorded) - set(present)):
        return f"lacks its file {missing[0]}"
    if added := sorted(set(present) - set(recorded)):
        return f"holds a file it was not written with ({added[0]})"
    files = {}
    for rel, p in present.items():
        size = p.stat().st_size
        if not isinstance(recorded[rel], dict) or recorded[rel].get("size") != size:
            return f"has file {rel} of {size} bytes, not the size it was written with"
        files[rel] = (p, size)
    files = {rel: f for rel, f in files.items() if largest is None or f[1] <= largest}
    digests = _digests(files)
    for rel in files:
        if digests[rel] != recorded[rel].get("sha256"):
            return f"has file {rel} whose bytes differ from those it was written with (checksum)"
    return None


__all__ = ["BLOCK", "folder_manifest", "folder_problem", "tensors_digest"]
