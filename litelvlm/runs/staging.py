"""Where a write lands while a results folder's transaction is open: this process's staging folder inside the
folder, found by the write's own path (so no list of open transactions is kept, and two folders open at once,
or a write of another process, never land in each other's), and the log of what the run staged there. This
module is this project's own; :mod:`litelvlm.runs.transaction` opens and commits the staging folder
(docs/results-folders.md)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

STAGE_PREFIX = ".litelvlm-stage-"
#: inside a staging folder: what the run staged, created in place and removes at the commit (one JSON line
#: each, after the line naming the ``direct`` folders); a staging folder takes writes while it holds this
LOG = ".litelvlm-log"
#: this process's mark in the names of the folders it makes (staging, replaced), beside its pid (which a
#: process started later may get again, where a killed one left its folder)
PROCESS_MARK = secrets.token_hex(4)


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute (links not resolved)."""
    return Path(os.path.abspath(path))


def stage_name() -> str:
    """The name of this process's staging folder in any results folder."""
    return f"{STAGE_PREFIX}{os.getpid()}-{PROCESS_MARK}"


def open_stage(path: str | os.PathLike) -> tuple[Path, Path] | None:
    """The innermost folder holding ``path`` in which this process has a transaction open, with its staging
    folder (None: a write to ``path`` goes in place)."""
    name = stage_name()
    for folder in absolute(path).parents:
        if os.path.isfile(folder / name / LOG) and not os.path.islink(folder / name):
            return folder, folder / name
    return None


def route(path: str | os.PathLike) -> tuple[Path, str] | None:
    """Where a write to ``path`` lands: (staging folder, path relative to it) in the open transaction of a
    folder holding it, or None when it goes in place (then a file created under a ``direct`` folder is
    recorded as the run's, :attr:`litelvlm.runs.transaction.Transaction.written`)."""
    found = open_stage(path)
    if found is None:
        return None
    out, stage = found
    rel = absolute(path).relative_to(out)
    with open(stage / LOG) as f:
        direct = json.loads(f.readline())[1]
    if rel.parts[0] in direct or rel.parts[0].startswith(STAGE_PREFIX):
        if not os.path.exists(path):   # a file this run creates (one it rewrites is not its to remove)
            record(stage, rel.as_posix(), "wrote")
        return None
    return stage, rel.as_posix()


def record(stage: Path, value: object, kind: str = "staged") -> None:
    """Record one entry in the staging folder's :data:`LOG` (``staged``: a file staged whole at ``value``)."""
    with open(stage / LOG, "a") as f:
        f.write(json.dumps([kind, value]) + "\n")


def entries(stage: Path | None, kind: str) -> list[str]:
    """The entries ``kind`` of the staging folder's :data:`LOG`, once each in the order recorded (none once
    it is closed)."""
    try:
        lines = (stage / LOG).read_text().splitlines() if stage is not None else []
    except FileNotFoundError:
        return []
    return list(dict.fromkeys(value for k, value in map(json.loads, lines) if k == kind))


def current(path: str | os.PathLike) -> Path:
    """Where ``path`` is read from: this run's staged copy when an open transaction staged one (a run reads
    its own writes), else ``path`` itself."""
    found = open_stage(path)
    if found is not None:   # a staged file is complete or absent (its writer renames it there last)
        staged = found[1] / absolute(path).relative_to(found[0])
        if staged.is_file():
            return staged
    return Path(path)


__all__ = ["LOG", "PROCESS_MARK", "STAGE_PREFIX", "absolute", "current", "entries", "open_stage", "record",
           "route", "stage_name"]
