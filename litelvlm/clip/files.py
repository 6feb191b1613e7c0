"""Which local files a CLIP model string loads from (keys the weights-hash memo and saved descriptions)."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import try_to_load_from_cache

from ..models.model_spec import ModelSpec


def hub_snapshot_dir(repo_id: str) -> Path | None:
    """The local snapshot folder of a Hugging Face hub id already in the cache (no network), or None."""
    if os.path.isdir(repo_id) or repo_id.count("/") != 1:
        return None

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        return None
    return Path(found).parent if isinstance(found, str) else None


def model_files(source: str, backend: str) -> list[Path]:
    """The local files of a resolved model string: a folder's files (hf: a local folder or a cached hub
    id; open_clip: ``local-dir:``) or an open_clip ``ARCH:/path`` checkpoint; [] when not known here."""
    if backend == "hf":
        folder = Path(source) if os.path.isdir(source) else hub_snapshot_dir(source)
    elif (spec := ModelSpec.of(source)).local_dir is not None:
        folder = Path(spec.local_dir)
    else:
        path = spec.rest
        return [Path(path)] if path and Path(path).is_file() else []
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file())
