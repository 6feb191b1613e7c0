"""The one run machinery under every command that writes results (the studies', ``toy-data``'s,
``toy-train``'s): :class:`RunFolder`, the ``--out`` folder of one run, with the studies' resumable parts
(:meth:`RunFolder.resume`, :mod:`litelvlm.runs.parts`).

Details: docs/results-folders.md (``litelvlm.runs.run_folder``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LiteLVLMError
from ..lazy import Lazy
from . import run_owner
from .folder_lock import LOCK_NAME, FolderLock
from .io import write_json
from .records import inside
from .resume import check_config
from .stop_signals import stops_as_interrupts
from .transaction import Transaction

log = logging.getLogger(__name__)

#: the record of the configuration a folder's finished parts were computed with
PARTS_CONFIG = Path("parts") / "config.json"
#: the finished parts (:mod:`litelvlm.runs.parts` reads tables: pandas, pyarrow), imported when a run resumes,
#: so that a command refused before it runs never waits for them
PARTS = Lazy("litelvlm.runs.parts", "PartStore")
#: the folders whose runs this process has committed, in order (what a stop after the commit reports)
_COMMITTED: list[Path] = []


def committed_runs() -> tuple[Path, ...]:
    """The ``--out`` folders of the runs this process has committed so far, oldest first."""
    return tuple(_COMMITTED)


class RunFolder:
    """The ``--out`` folder of one run, as a context manager (see the module's description).

    ``owned``: optional outputs of the study (names relative to the folder); those the run does not write
    again are removed when it commits (:meth:`drop_stale`), so figures never draw an older run's tables.
    ``direct``: the top-level folders whose files are written in place as the run goes (resumable parts).
    ``command``: the command whose run this is (recorded; a folder holding another command's run is refused).
    ``overwrite``: replace the earlier run whole (None: as ``litelvlm --overwrite`` claimed the folder).
    """

    def __init__(self, out: str | Path, owned: tuple[str, ...] = (), direct: tuple[str, ...] = ("parts",),
                 command: str | None = None, overwrite: bool | None = None):
        self.out = Path(out)
        claim = run_owner.claimed(out)
        self.command = command or (claim[0] if claim else None)
        self.overwrite = bool(claim and claim[1]) if overwrite is None else overwrite
        self._checked = claim is not None and (command is None or claim[0] == command)
        self.owned = tuple(owned)
        self.direct = tuple(direct)
        self._lock = FolderLock(self.out)
        self._signals: contextlib.ExitStack | None = None
        self._created = False
        self._drop: list[str] = []
        self.tx: Transaction | None = None

    def __enter__(self) -> RunFolder:
        if self.out.is_symlink() and not self.out.exists():
            raise LiteLVLMError(f"--out {str(self.out)!r} is a broken symbolic link (to "
                                f"{os.readlink(self.out)!r}): remove it, or use another --out")
        if not self._checked and not self.overwrite and self.command is not None:
            # a run started from Python: the checks of the command line
            run_owner.claim(self.out, self.command)
        try:
            self._created = not os.path.lexists(self.out)
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except OSError as e:
            raise LiteLVLMError(f"--out {str(self.out)!r}: cannot write there ({e.strerror})") from None
        # SIGTERM and SIGHUP roll the run back as Ctrl-C does (a run started from Python too)
        self._signals = contextlib.ExitStack()
        self._signals.enter_context(stops_as_interrupts())
        try:
            self.tx = Transaction(self.out, self.direct, overwrite=self.overwrite).begin()
            if self.overwrite:
                earlier = self._earlier_run()
                if earlier:
                    self.tx.replace_earlier(earlier)
        except OSError as e:
            if self.tx is not None:
                self.tx.abort()
            self._release()
            raise LiteLVLMError(f"--out {str(self.out)!r}: cannot write there ({e.strerror})") from None
        except BaseException as e:
            if self.tx is not None:
                self.tx.abort()
            self._release()
            if isinstance(e, KeyboardInterrupt):   # stopped while the run took its folder
                e.outcome = self._stopped(parts=False, entering=True)
            raise
        return self

    def _earlier_run(self) -> list[str]:
        """The top-level entries of the earlier run that ``--overwrite`` replaces: those its record names (its
        result files, resumable folders, config.json and the record); every entry but hidden ones without
        one."""
        names = {p.name for p in self.out.iterdir() if not p.name.startswith(".")}
        try:
            record = run_owner.read_run_record(self.out)
        except LiteLVLMError as e:   # not trusted: the folder's entries are replaced whole
            log.warning("%s; --overwrite replaces every entry of the folder but hidden ones", e)
            record = None
        if record is not None:
            names = {rel.split("/")[0] for rel in record["files"]} | set(record.get("direct", ())) | {
                "config.json"}
        names.add(run_owner.MARKER)
        return sorted(n for n in names if os.path.lexists(self.out / n))

    # -- what a run asks of its folder ---------------------------------------------------------------
    def drop_stale(self, written: set[str] | list[str]) -> list[str]:
        """Mark the owned optional outputs this run does not write for removal at commit; returns their
        names."""
        self._drop = [n for n in self.owned if n not in set(written) and (self.out / n).exists()]
        return list(self._drop)

    def resume(self, config: dict, growable: dict[str, Callable[[Any, Any], bool]] | None = None,
               ignore: tuple[str, ...] = (), record: bool = True) -> dict | None:
        """Check that the finished parts here were computed with a compatible ``config`` (refused otherwise,
        naming the options), drop damaged parts, and (``record``) record ``config`` for the next resume (kept
        when this run fails, where it describes parts already there). Returns the configuration the parts
        were computed with (None in a fresh folder)."""
        path = self.out / PARTS_CONFIG
        old = check_config(path.parent if path.exists() else self.out, config, growable, ignore)
        PARTS.get()(self.out).verify()
        if record:
            write_json(path, {k: v for k, v in config.items() if k != "run"})
        return old

    # -- the end of the run ---------------------------------------------------------------------------
    def __exit__(self, kind, exc, tb) -> None:
        try:
            if self.tx is None:
                return
            if kind is None:
                try:
                    try:
                        self._record()
                    except BaseException:
                        self.tx.abort()
                        raise
                    self.tx.commit(drop=self._drop)   # aborts itself, or leaves its journal to complete later
                except BaseException:
                    self._remove_if_empty()
                    raise
                _COMMITTED.append(self.out)
            elif issubclass(kind, (Exception, KeyboardInterrupt, SystemExit)):
                if issubclass(kind, LiteLVLMError) and not self._created:
                    # before an earlier run replaced whole returns (its files may share names)
                    self._remove_written()
                parts = bool(self.tx.written) and not self.overwrite
                self.tx.abort()
                if issubclass(kind, LiteLVLMError) and self._created:   # everything in it is this run's
                    shutil.rmtree(self.out, ignore_errors=True)
                if issubclass(kind, KeyboardInterrupt) and exc is not None:
                    exc.outcome = self._stopped(parts)
                self._remove_if_empty()
            else:   # the process is going down (a kill): the next run on the folder cleans up
                self.tx.forget()
        finally:
            self._release()
            run_owner.release(self.out)

    def _stopped(self, parts: bool, entering: bool = False) -> str:
        """What a stopped run (Ctrl-C, SIGTERM, SIGHUP) leaves, as its stop line says it (``entering``:
        stopped while it took its folder). A run that wrote resumable parts into a folder without a run record
        records its command beside them (``stopped``), so that another command is refused there
        (:func:`litelvlm.runs.run_owner.claim`)."""
        if self.overwrite:
            return "the results folder holds its earlier run, byte for byte: this run replaced nothing"
        if entering:
            return "the run had written nothing yet: nothing of it is kept"
        if parts:
            with contextlib.suppress(LiteLVLMError, OSError):
                if self.command is not None and run_owner.read_run_record(self.out) is None:
                    write_json(self.out / run_owner.MARKER, {"command": self.command, "files": {},
                                                             "direct": list(self.direct), "stopped": True})
            return ("the results folder keeps its earlier results; this run's completed parts are kept and a "
                    "re-run of the same command resumes")
        if self._created:
            return ("nothing of this run is kept: it had written no part to resume from, and its new folder "
                    "is removed")
        return "the results folder is as it was before this run, which had written no part to resume from"

    def _record(self) -> None:
        """Stage the run's record (:data:`~litelvlm.runs.run_owner.MARKER`): its command and the size and
        SHA-256 of every result file the folder holds after the commit (the earlier run's entries for files
        kept)."""
        if self.command is None:
            return
        files: dict[str, dict] = {}
        if not self.overwrite:
            with contextlib.suppress(LiteLVLMError):
                earlier = run_owner.read_run_record(self.out)
                if earlier is not None:
                    gone = {*self._drop, *self.tx.removed}
                    files = {rel: e for rel, e in earlier["files"].items()
                             if rel not in gone and os.path.isfile(self.out / rel)}
        for rel in self.tx.staged:
            path = self.tx.stage / rel
            if rel != run_owner.MARKER:
                files[rel] = {"sha256": run_owner.file_digest(path), "size": path.stat().st_size}
        write_json(self.out / run_owner.MARKER, {"command": self.command, "direct": list(self.direct),
                                                 "files": dict(sorted(files.items()))})

    def _remove_written(self) -> None:
        """Remove the files this run wrote in place (and the folders that held only them)."""
        dirs = set()
        for p in self.tx.written:
            inside(self.out, p).unlink(missing_ok=True)
            dirs.update(q for q in p.parents if self.out in q.parents)
        for d in sorted(dirs, key=lambda q: len(q.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()

    def _remove_if_empty(self) -> None:
        """A folder this run created and left with nothing but its lock is removed again."""
        if self._created and self.out.is_dir() and not self.out.is_symlink() and \
                all(p.is_dir() or p == self.out / LOCK_NAME for p in self.out.rglob("*")):
            shutil.rmtree(self.out, ignore_errors=True)

    def _release(self) -> None:
        """Let the lock go (its file removed while still held) and the stop signals' handlers return."""
        self._lock.release()
        if self._signals is not None:
            self._signals.close()
            self._signals = None


__all__ = ["LOCK_NAME", "PARTS_CONFIG", "RunFolder"]
