"""One results folder's transaction: a run's tables and its ``config.json`` change together or not at all.

Details: docs/results-folders.md (``litelvlm.runs.transaction``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import LiteLVLMError
from .records import damaged, inside, plain_name, read_record
from .staging import LOG, PROCESS_MARK, STAGE_PREFIX, absolute, entries, record, stage_name
from .stop_signals import held

JOURNAL = ".litelvlm-commit.json"
#: the suffix of every temporary file the project writes (and the only temporary files it ever removes)
TMP_SUFFIX = ".litelvlm-tmp"
#: where an earlier run replaced whole (``--overwrite``) waits for the new run's commit
REPLACED_PREFIX = ".litelvlm-replaced-"
#: inside a staging folder: the earlier versions of the files a commit replaces, until it completes
EARLIER = ".earlier"


def replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move ``src`` over ``dst`` atomically: the one rename every write of the project ends in."""
    os.replace(src, dst)


class Transaction:
    """Stage the writes into ``out`` (except those under the top-level folders ``direct``) until
    :meth:`commit`. Its staging folder, named for this process, is where they go: a write finds it by its
    path (:func:`~litelvlm.runs.staging.open_stage`), so two folders open at once never see each other's
    writes."""

    def __init__(self, out: str | os.PathLike, direct: tuple[str, ...] = (), overwrite: bool = False):
        self.out = absolute(out)
        self.overwrite = overwrite
        self.direct = tuple(direct)
        self.stage: Path | None = None
        #: where the earlier run replaced whole (``--overwrite``) waits until the commit
        self.replaced: Path | None = None

    def begin(self) -> Transaction:
        """Finish or discard what an interrupted run left (:func:`recover`), then open the staging folder."""
        recover(self.out, discard_damaged=self.overwrite)
        self.stage = self.out / stage_name()
        self.stage.mkdir()
        record(self.stage, list(self.direct), "direct")
        return self

    @property
    def staged(self) -> list[str]:
        """The staged files, as paths relative to ``out``, in the order they were written."""
        return entries(self.stage, "staged")

    @property
    def written(self) -> list[Path]:
        """The files created in place (under a ``direct`` folder), absolute."""
        return [self.out / rel for rel in entries(self.stage, "wrote")]

    @property
    def removed(self) -> list[str]:
        """Earlier result files to remove at the commit (:func:`litelvlm.runs.io.remove_result`)."""
        return entries(self.stage, "remove")

    def commit(self, drop: tuple[str, ...] | list[str] = ()) -> list[str]:
        """Move every staged file into place and remove the files named in ``drop`` that this run did not
        write (an older run's optional outputs), behind the journal. Every target is checked first (a folder,
        a link or an unwritable folder where a file goes is refused before anything moves); a move that still
        fails is rolled back, so the folder holds the earlier run exactly as it was. Returns the committed
        names."""
        staged, drop = self.staged, [*drop, *self.removed]
        self._close()
        journal = {"stage": self.stage.name, "files": staged,
                   "drop": [d for d in dict.fromkeys(drop) if d not in staged
                            and os.path.lexists(self.out / d)]}
        if self.replaced is not None:
            journal["replaced"] = self.replaced.name
        try:
            check_targets(self.out, journal["files"] + journal["drop"])
        except BaseException:
            self.abort()
            raise
        with held():   # a stop (SIGINT, SIGTERM, SIGHUP) lands before the journal or after the last move
            fd, tmp = tempfile.mkstemp(prefix=f"{JOURNAL}.", suffix=TMP_SUFFIX, dir=self.out)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(journal, f)
                    f.flush()
                    os.fsync(f.fileno())
                step("journal written")
                replace(tmp, self.out / JOURNAL)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                self.abort()
                raise
            done: list[str] = []
            try:
                _apply(self.out, journal, done)
            except Exception:
                # raises when even that fails: the journal then completes it later
                _undo(self.out, journal, done)
                self.abort()
                raise
        return journal["files"]

    def replace_earlier(self, names: list[str]) -> None:
        """Move the top-level entries ``names`` (an earlier run, replaced whole) aside until the commit, which
        removes them; a failed run puts them back (:meth:`abort`, or :func:`recover` after a kill)."""
        # named before it is made: a stop landing the moment it exists finds it to remove (abort)
        self.replaced = self.out / f"{REPLACED_PREFIX}{os.getpid()}-{PROCESS_MARK}"
        self.replaced.mkdir()
        step("replaced folder made")
        for name in names:
            replace(inside(self.out, self.out / name), self.replaced / name)
            step(f"moved aside {name}")

    def abort(self) -> None:
        """Discard every staged file; the folder keeps what it held before (and the direct writes)."""
        self._close()
        with held():
            if self.stage is not None:
                shutil.rmtree(self.stage, ignore_errors=True)
            if self.replaced is not None and self.replaced.exists():
                _restore(self.out, self.replaced)

    def forget(self) -> None:
        """Stop taking writes, leaving the staged files (a killed run: :func:`recover` cleans up later)."""
        self._close()

    def _close(self) -> None:
        if self.stage is not None:
            inside(self.out, self.stage / LOG).unlink(missing_ok=True)


def check_targets(out: Path, names: list[str]) -> None:
    """Refuse, before anything moves, a commit whose targets cannot all be written: a folder or a link where a
    result file goes, a file where a folder goes, or a folder that cannot be written (one line naming it)."""
    for rel in names:
        path = out / rel
        for parent in reversed((path.relative_to(out)).parents[:-1]):
            q = out / parent
            if os.path.lexists(q) and (q.is_symlink() or not q.is_dir()):
                raise LiteLVLMError(f"{q} is a file or a link where the folder of {rel} should be: nothing "
                                    "was changed; remove it, or use another --out")
        if path.is_symlink() or path.is_dir():
            raise LiteLVLMError(f"{path} is a {'link' if path.is_symlink() else 'folder'} where the result "
                                f"file {rel} should be: nothing was changed; remove it, or use another --out")
        folder = path.parent if path.parent.exists() else out
        if not os.access(folder, os.W_OK | os.X_OK):
            raise LiteLVLMError(f"{folder} cannot be written (permission denied), so {rel} cannot be "
                                "replaced: nothing was changed")


def _apply(out: Path, journal: dict, done: list[str] | None = None) -> None:
    """Carry out (or finish) a commit: each earlier file moves aside into the staging folder, then the new one
    into place; the earlier ones are deleted with the staging folder when every move is made."""
    stage = out / journal["stage"]
    earlier = stage / EARLIER
    for rel in journal["files"]:
        src, dst = stage / rel, inside(out, out / rel)
        if src.exists():   # moved already when a killed commit is rolled forward
            dst.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dst) and not os.path.lexists(earlier / rel):
                (earlier / rel).parent.mkdir(parents=True, exist_ok=True)
                replace(dst, earlier / rel)
                step(f"moved the earlier {rel} aside")
            replace(src, dst)
            step(f"moved {rel} into place")
            if done is not None:
                done.append(rel)
    for rel in journal.get("drop", []):
        if os.path.lexists(inside(out, out / rel)) and not os.path.lexists(earlier / "drop" / rel):
            (earlier / "drop" / rel).parent.mkdir(parents=True, exist_ok=True)
            replace(out / rel, earlier / "drop" / rel)
            step(f"dropped {rel}")
    # the journal goes last: until it has gone, a kill is rolled forward (never back to the replaced run)
    if journal.get("replaced"):
        _remove_tree(out, out / journal["replaced"])
        step("replaced run removed")
    _remove_tree(out, stage)
    step("staging folder removed")
    (out / JOURNAL).unlink(missing_ok=True)
    step("journal removed")


def _undo(out: Path, journal: dict, done: list[str]) -> None:
    """Roll back a commit that failed part-way: the new files go back to the staging folder and the earlier
    ones into place, then the journal goes (the folder holds the earlier run exactly as it was)."""
    stage = out / journal["stage"]
    earlier = stage / EARLIER
    for rel in reversed(done):
        replace(inside(out, out / rel), stage / rel)
    for rel in journal["files"]:
        if os.path.lexists(earlier / rel):
            replace(earlier / rel, out / rel)
    for rel in journal.get("drop", []):
        if os.path.lexists(earlier / "drop" / rel):
            replace(earlier / "drop" / rel, out / rel)
    (out / JOURNAL).unlink(missing_ok=True)


def _restore(out: Path, aside: Path) -> None:
    """Put an earlier run replaced whole back in place (the failed new run's entries of the same names go)."""
    for entry in aside.iterdir():
        target = inside(out, out / entry.name)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        replace(entry, target)
        step(f"put back {entry.name}")
    aside.rmdir()


def _remove_tree(out: Path, path: Path) -> None:
    """Remove ``path`` inside ``out``: a folder with its content, a link (never followed) or a file."""
    inside(out, path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def check_journal(out: str | os.PathLike) -> None:
    """Refuse a commit journal (``.litelvlm-commit.json``) that cannot be read: the next run could not
    complete that commit."""
    path = Path(out) / JOURNAL
    if os.path.lexists(path):
        journal = read_record(path)
        if not isinstance(journal, dict) or not isinstance(journal.get("files"), list) \
                or not isinstance(journal.get("drop", []), list):
            raise damaged(path, "is not a commit journal of this project")
        for key, prefix in (("stage", STAGE_PREFIX), ("replaced", REPLACED_PREFIX)):
            if key in journal or key == "stage":
                plain_name(out, journal.get(key), path, top=True)
                if not journal[key].startswith(prefix):
                    raise damaged(path, f"names {journal[key]!r} as its {key} folder, not one of this "
                                        f"project's")
        for rel in journal["files"] + journal.get("drop", []):
            plain_name(out, rel, path)


def pending(out: str | os.PathLike) -> bool:
    """Whether ``out`` holds a commit that a killed run began and the next run will finish."""
    return (Path(out) / JOURNAL).exists()


def recover(out: str | os.PathLike, discard_damaged: bool = False) -> list[str]:
    """Roll forward a commit a killed run began, put back an earlier run that a killed ``--overwrite`` run had
    moved aside, then remove what an unfinished run of this project left in ``out``: its staging folders and
    its temporary files (``*`` + :data:`TMP_SUFFIX`); nothing else, and nothing outside ``out`` (a link under
    one of these names is removed, never followed). A journal that cannot be read is an error naming it (the
    commit it records could not be completed), or removed with ``discard_damaged`` (``--overwrite``). Returns
    what it did to the folder's results (empty: they were as the last finished run left them). The caller
    holds the folder's lock."""
    out = absolute(out)
    journal = out / JOURNAL
    did: list[str] = []
    with held():
        if os.path.lexists(journal):
            try:
                check_journal(out)
            except LiteLVLMError:
                if not discard_damaged:
                    raise
                _remove_tree(out, journal)
            else:
                _apply(out, json.loads(journal.read_text()))
                did.append("finished the commit of a run stopped while it moved its results into place")
        for p in sorted(out.glob(f"{REPLACED_PREFIX}*")):
            if p.is_symlink() or not p.is_dir():
                _remove_tree(out, p)
                continue
            _restore(out, p)
            did.append("put back the earlier run that an unfinished --overwrite run had moved aside")
        for p in out.glob(f"{STAGE_PREFIX}*"):
            _remove_tree(out, p)
        for p in _tmp_files(out):
            p.unlink(missing_ok=True)
    return did


def _tmp_files(out: Path) -> list[Path]:
    """The project's temporary files under ``out`` (links to folders are not followed), outside the staging
    and replaced folders."""
    found = []
    for root, dirs, files in os.walk(out):   # os.walk never follows a link to a folder
        dirs[:] = [d for d in dirs if not d.startswith((STAGE_PREFIX, REPLACED_PREFIX))]
        found += [Path(root) / f for f in files if f.endswith(TMP_SUFFIX)
                  and not os.path.islink(os.path.join(root, f))]
    return found


#: called with the name of each step of the commit and overwrite protocol as it completes (None: nothing);
#: fault-injection tests set it to stop a process at a chosen step
STEP_HOOK = None


def step(name: str) -> None:
    """Mark that the protocol step ``name`` has completed (:data:`STEP_HOOK`)."""
    if STEP_HOOK is not None:
        STEP_HOOK(name)
