"""Settling a results folder before a command touches it: what a stopped or killed run left there (a commit
it had begun, an earlier run it had moved aside) is finished or undone first, under the folder's lock, and
said in one line; a running run's folder is left to it. This module is this project's own (see
:mod:`litelvlm.runs.transaction` for the protocol, ``docs/results-folders.md`` for the rules)."""

from __future__ import annotations

import logging
import os

from .folder_lock import FolderLock
from .staging import STAGE_PREFIX
from .transaction import JOURNAL, REPLACED_PREFIX, recover

log = logging.getLogger(__name__)


def leftovers(out: str | os.PathLike) -> bool:
    """Whether ``out`` holds what an unfinished run left at its top: a commit journal, a replaced earlier run
    or a staging folder."""
    try:
        names = os.listdir(out)
    except OSError:
        return False
    return any(n == JOURNAL or n.startswith((STAGE_PREFIX, REPLACED_PREFIX)) for n in names)


def settle(out: str | os.PathLike, discard_damaged: bool = False) -> list[str]:
    """Before a command touches ``out``: when an unfinished run left a commit or a replaced earlier run there,
    take the folder's lock, finish or undo what was left (:func:`recover`) and say so in one line. Nothing
    when a running run holds the lock: what is there is its own (a second run is refused when it asks for the
    lock; a shard of the running run goes on). Returns what was done."""
    if not leftovers(out):
        return []
    lock = FolderLock(out)
    if not lock.try_acquire():
        return []
    try:
        did = recover(out, discard_damaged=discard_damaged)
    finally:
        lock.release()
    if did:
        log.warning("--out %r: %s", str(out), "; ".join(did))
    return did


__all__ = ["leftovers", "settle"]
