"""One results folder's transaction: a run's tables and its ``config.json`` change together or not at all.

While a :class:`Transaction` on a folder is open, every write that goes through :mod:`litelvlm.io`
(:func:`~litelvlm.io.atomic_path` and the writers built on it) into that folder is *staged*: it lands in a
hidden staging folder inside it (``.litelvlm-stage-*``), not in place. :meth:`Transaction.commit` then moves
the staged files into place behind a journal (``.litelvlm-commit.json``, written atomically before the first
move): a process killed during the moves leaves the journal, and the next transaction on the folder rolls
the commit forward before it starts (:func:`recover`). A failed or killed run leaves the folder as it was;
a finished one leaves the new files complete, never a mixture of two runs.

Writes into the folders named ``direct`` (the resumable parts) go in place at once, each atomically, and
are recorded in :attr:`Transaction.written`, so a failure can remove exactly what this run wrote and nothing
else. Cleanup only ever touches the names this module makes: the staging folders, the journal, and the
temporary files ending in :data:`TMP_SUFFIX`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

STAGE_PREFIX = ".litelvlm-stage-"
JOURNAL = ".litelvlm-commit.json"
#: the suffix of every temporary file the project writes (and the only temporary files it ever removes)
TMP_SUFFIX = ".litelvlm-tmp"

_ACTIVE: list[Transaction] = []


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` over ``dst`` atomically: the one rename every write of the project ends in."""
    os.replace(src, dst)


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


class Transaction:
    """Stage the writes into ``out`` (except those under the top-level folders ``direct``) until :meth:`commit`."""

    def __init__(self, out: str | os.PathLike, direct: tuple[str, ...] = ()):
        self.out = _absolute(out)
        self.direct = tuple(direct)
        self.stage: Path | None = None
        #: the staged files, as paths relative to ``out``, in the order they were written
        self.staged: list[str] = []
        #: the files created in place (under a ``direct`` folder), absolute
        self.written: list[Path] = []

    def begin(self) -> Transaction:
        """Finish or discard what an interrupted run left (:func:`recover`), then open the staging folder."""
        recover(self.out)
        self.stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=self.out))
        _ACTIVE.append(self)
        return self

    def route(self, path: str | os.PathLike) -> Path | None:
        """Where a write to ``path`` lands: its staging path, or None when it goes in place (outside the
        folder, or under a ``direct`` folder; then it is recorded in :attr:`written`)."""
        p = _absolute(path)
        try:
            rel = p.relative_to(self.out)
        except ValueError:
            return None
        if not rel.parts or rel.parts[0] in self.direct or rel.parts[0].startswith(STAGE_PREFIX):
            if not p.exists():   # a file this run creates (one it rewrites is not its to remove)
                self.written.append(p)
            return None
        return self.stage / rel

    def staged_as(self, staged: Path) -> None:
        """Record that the staged file ``staged`` is complete (called by :func:`litelvlm.io.atomic_path`)."""
        rel = staged.relative_to(self.stage).as_posix()
        if rel not in self.staged:
            self.staged.append(rel)

    def commit(self, drop: tuple[str, ...] | list[str] = ()) -> list[str]:
        """Move every staged file into place and remove the files named in ``drop`` that this run did not
        write (an older run's optional outputs), behind the journal. Returns the committed names."""
        self._close()
        journal = {"stage": self.stage.name, "files": list(self.staged),
                   "drop": [d for d in drop if d not in self.staged]}
        fd, tmp = tempfile.mkstemp(prefix=f"{JOURNAL}.", suffix=TMP_SUFFIX, dir=self.out)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(journal, f)
                f.flush()
                os.fsync(f.fileno())
            replace(tmp, self.out / JOURNAL)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            self.abort()
            raise
        _apply(self.out, journal)
        return journal["files"]

    def abort(self) -> None:
        """Discard every staged file; the folder keeps what it held before (and the direct writes)."""
        self._close()
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)

    def forget(self) -> None:
        """Stop routing writes, touching nothing on disk (a killed run: :func:`recover` cleans up later)."""
        self._close()

    def _close(self) -> None:
        if self in _ACTIVE:
            _ACTIVE.remove(self)


def _apply(out: Path, journal: dict) -> None:
    stage = out / journal["stage"]
    for rel in journal["files"]:
        src = stage / rel
        if src.exists():   # moved already when a killed commit is rolled forward
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            replace(src, out / rel)
    for rel in journal["drop"]:
        (out / rel).unlink(missing_ok=True)
    (out / JOURNAL).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def pending(out: str | os.PathLike) -> bool:
    """Whether ``out`` holds a commit that a killed run began and the next run will finish."""
    return (Path(out) / JOURNAL).exists()


def recover(out: str | os.PathLike) -> None:
    """Roll forward a commit a killed run began, then remove what an unfinished run of this project left in
    ``out``: its staging folders and its temporary files (``*`` + :data:`TMP_SUFFIX`); nothing else."""
    out = _absolute(out)
    journal = out / JOURNAL
    if journal.exists():
        try:
            _apply(out, json.loads(journal.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            journal.unlink(missing_ok=True)   # a journal that was never complete: that commit never began
    for p in out.glob(f"{STAGE_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in out.rglob(f"*{TMP_SUFFIX}"):
        if p.is_file() and not any(part.startswith(STAGE_PREFIX) for part in p.relative_to(out).parts):
            p.unlink(missing_ok=True)


def current(path: str | os.PathLike) -> Path:
    """Where ``path`` is read from: this run's staged copy when an open transaction staged one (a run reads its
    own writes), else ``path`` itself."""
    tx = active_for(path)
    if tx is not None and tx.stage is not None:
        staged = tx.stage / _absolute(path).relative_to(tx.out)
        if staged.relative_to(tx.stage).as_posix() in tx.staged:
            return staged
    return Path(path)


def active_for(path: str | os.PathLike) -> Transaction | None:
    """The innermost open transaction whose folder holds ``path`` (None: the write goes in place)."""
    p = _absolute(path)
    best = None
    for tx in _ACTIVE:
        if (p == tx.out or tx.out in p.parents) and (best is None or len(tx.out.parts) > len(best.out.parts)):
            best = tx
    return best
