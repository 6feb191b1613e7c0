"""Every file the run machinery and the caches read back, damaged every way a file can be damaged (garbled, of
the wrong JSON type, of the wrong schema, truncated, a link, a folder, unreadable), gives what the docs
promise: a result record is refused in one line naming it (nothing changed), a resumable part is removed with
a warning naming it (its ids computed again), a cache entry is removed or rebuilt with a warning. Never a
traceback, and never a file touched outside the folder.

The table: :data:`READERS` (what is read, how it is built, how it is read, what is promised) times
:data:`KINDS` (how it is damaged). ``docs/results-folders.md`` ("Damaged files") is the promise."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from analysis.validate import reference
from analysis.validate.reference import REFERENCE_FILE, load_reference, save_reference
from litelvlm.errors import LiteLVLMError
from litelvlm.runs import cache
from litelvlm.runs.folder_lock import LOCK_NAME
from litelvlm.runs.io import write_json, write_text
from litelvlm.runs.parts import PartStore
from litelvlm.runs.run_folder import RunFolder
from litelvlm.runs.run_folder import RunFolder as StudyFolder
from litelvlm.runs.run_owner import MARKER, claim, release
from litelvlm.runs.transaction import JOURNAL, STAGE_PREFIX


def _run(tmp_path: Path) -> Path:
    """A finished eval-grounding run with one resumable part and its parts' configuration."""
    out = tmp_path / "d"
    with StudyFolder(out, command="eval-grounding", overwrite=False) as run:
        run.resume({"model": "m", "seed": 0})
        PartStore(out).write([1], pd.DataFrame({"image_id": [1], "iou": [0.5]}),
                             {"keys": [["none", 576]]}, {"objects": pd.DataFrame({"o": [1]})})
        write_text(out / "summary.csv", "method,ciou\nnone,0.5\n")
        write_json(out / "config.json", {"identity": {"study": "grounding"}, "args": {}})
    return out


def _claim(out: Path) -> None:
    try:
        claim(out, "eval-grounding")
    finally:
        release(out)


def _resume(out: Path) -> None:
    with StudyFolder(out, command="eval-grounding", overwrite=False) as run:
        run.resume({"model": "m", "seed": 0})


def _verify(out: Path) -> None:
    _resume(out)   # what a resumed run does first
    assert PartStore(out).done() == set()   # the damaged part is gone: its ids are computed again


def _cache_entry(tmp_path: Path) -> Path:
    store = cache.TensorCache(tmp_path / "cache", {"model": "m"})
    store.put("img-1", {"x": torch.arange(4.0)})
    return store._path("img-1")


def _cache_get(path: Path) -> None:
    store = cache.TensorCache(path.parents[1], {"model": "m"})
    assert store.get("img-1") is None and store.bad == 1
    store.put("img-1", {"x": torch.arange(4.0)})   # stored again in its place
    assert torch.equal(store.get("img-1")["x"], torch.arange(4.0))


def _cached_folder(tmp_path: Path) -> Path:
    root = tmp_path / "cache" / "model"
    cache.write_once(root, lambda d: (d / "weights.bin").write_bytes(b"w" * 64))
    return root / ".complete"


def _rebuild_folder(path: Path) -> None:
    root = cache.write_once(path.parent, lambda d: (d / "weights.bin").write_bytes(b"w" * 64))
    assert (root / "weights.bin").read_bytes() == b"w" * 64 and (root / ".complete").is_file()


def _reference(tmp_path: Path) -> Path:
    out = tmp_path / "d"
    out.mkdir()
    save_reference(out, {"_ids": torch.arange(5)[None], "_masks": torch.zeros(2, 4, 4, dtype=torch.bool),
                         "_logits": torch.zeros(2, 4, 4)})
    return out / REFERENCE_FILE


def _load_reference(out: Path) -> None:
    assert load_reference(out) is None   # removed: the reference call is made again


@dataclass(frozen=True)
class Reader:
    """One file read back: ``build(tmp_path)`` makes a folder and returns the file; ``read(folder)`` reads it;
    ``promise``: "refused" (a LiteLVLMError naming the file), "removed" or "rebuilt" (a warning naming it);
    ``schema``: content of the right JSON type but the wrong fields."""

    build: Callable[[Path], Path]
    read: Callable[[Path], None]
    promise: str
    schema: bytes
    folder: Callable[[Path], Path] = lambda p: p.parent


READERS = {
    "run record": Reader(lambda t: _run(t) / MARKER, _claim, "refused",
                         json.dumps({"command": "eval-grounding", "files": {"../x": {}}}).encode()),
    "commit journal": Reader(lambda t: _journal(_run(t)), _claim, "refused",
                             json.dumps({"stage": "../elsewhere", "files": ["summary.csv"]}).encode()),
    "config.json": Reader(lambda t: _run(t) / "config.json", _claim, "refused",
                          json.dumps({"identity": {"study": 3}, "paths": []}).encode()),
    "parts/config.json": Reader(lambda t: _run(t) / "parts" / "config.json", _resume, "refused",
                                json.dumps({"model": "m", "seed": 0, "paths": {"refer_dir": 1}}).encode(),
                                folder=lambda p: p.parents[1]),
    "part marker": Reader(lambda t: next((_run(t) / "parts").glob("part-*.json")), _verify, "removed",
                          json.dumps({"ids": ["one"], "keys": "none"}).encode(),
                          folder=lambda p: p.parents[1]),
    "part table": Reader(lambda t: next((_run(t) / "parts").glob("part-*-1.parquet")), _verify, "removed",
                         b"", folder=lambda p: p.parents[1]),
    "part side table": Reader(lambda t: next((_run(t) / "parts").glob("part-*-objects.parquet")), _verify,
                              "removed", b"", folder=lambda p: p.parents[1]),
    "feature-cache entry": Reader(_cache_entry, lambda p: _cache_get(p), "removed", b"",
                                  folder=lambda p: p),
    "validate's reference": Reader(_reference, _load_reference, "removed",
                                   b"", folder=lambda p: p.parent),
    "cached folder's manifest": Reader(_cached_folder, lambda p: _rebuild_folder(p), "rebuilt",
                                       json.dumps({"v": 1, "files": []}).encode(), folder=lambda p: p),
}


def _journal(out: Path) -> Path:
    (out / f"{STAGE_PREFIX}x").mkdir()
    write_json(out / JOURNAL, {"stage": f"{STAGE_PREFIX}x", "files": [], "drop": []})
    return out / JOURNAL


def _parquet_table(path: Path) -> bytes:
    buf = path.with_name("other.parquet")
    pd.DataFrame({"another": ["schema"]}).to_parquet(buf, index=False)
    data = buf.read_bytes()
    buf.unlink()
    return data


def _damage(kind: str, path: Path, reader: Reader, monkeypatch) -> None:
    data = path.read_bytes() if path.is_file() else b""
    if kind == "garbled":
        path.write_bytes(b'{"half": \x00\xff')
    elif kind == "wrong type":
        path.write_bytes(b"[1, 2, 3]" if path.suffix in (".json", "") else b"image_id,iou\n1,0.5\n")
    elif kind == "wrong schema":
        path.write_bytes(reader.schema or _parquet_table(path))
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind in ("link", "folder"):
        path.unlink()
        if kind == "link":
            (path.parents[2] / "elsewhere.json").write_bytes(data)
            path.symlink_to(path.parents[2] / "elsewhere.json")
        else:
            path.mkdir()
            (path / "inside.txt").write_text("a folder where a file should be")
    elif kind == "unreadable":
        _deny_reading(path, monkeypatch)


def _deny_reading(path: Path, monkeypatch) -> None:
    """Reading ``path`` fails as for a user without permission (root reads every file): Python's, pyarrow's
    and safetensors' readers alike, for this file only (not a new one written in its place)."""
    inode, held = path.stat().st_ino, {"on": True}

    def denied(file) -> bool:   # this file, not a new one written in its place
        try:
            return held["on"] and Path(file) == path and os.stat(file).st_ino == inode
        except (OSError, TypeError):
            return False

    def releasing(real, target_at: int):   # removing or replacing the file ends the denial (a new file may
        def call(*a, **k):                  # reuse its inode number)
            if len(a) > target_at and Path(a[target_at]) == path:
                held["on"] = False
            return real(*a, **k)
        return call

    monkeypatch.setattr(os, "replace", releasing(os.replace, 1))
    monkeypatch.setattr(os, "rename", releasing(os.rename, 1))
    monkeypatch.setattr(os, "unlink", releasing(os.unlink, 0))
    monkeypatch.setattr(os, "remove", releasing(os.remove, 0))
    monkeypatch.setattr(Path, "unlink", releasing(Path.unlink, 0))

    def refusing(real):
        def call(file, *a, **k):
            if denied(file):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real(file, *a, **k)
        return call

    for name in ("read_bytes", "read_text"):
        monkeypatch.setattr(Path, name, refusing(getattr(Path, name)))
    monkeypatch.setattr("builtins.open", refusing(open))
    for name in ("read_schema", "read_metadata"):   # pyarrow opens files itself
        monkeypatch.setattr(pq, name, refusing(getattr(pq, name)))
    for module in (reference, cache):   # so does safetensors
        monkeypatch.setattr(module, "load_file", refusing(module.load_file))


KINDS = ["garbled", "wrong type", "wrong schema", "truncated", "link", "folder", "unreadable"]


@pytest.mark.odd_case("damaged results", "every file the run machinery and the caches read back (run record, "
                      "journal, config.json, parts/config.json, part markers and tables, cache entries and "
                      "manifests) garbled, of the wrong type or schema, truncated, a link, a folder, "
                      "unreadable",
                      "every command writing --out or using the cache",
                      "a record refused in one line naming it; a part removed with a warning naming it; a "
                      "cache "
                      "entry removed or rebuilt with a warning; nothing outside the folder touched")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("what", list(READERS))
def test_a_damaged_file_read_back_gives_what_the_docs_promise(tmp_path, monkeypatch, caplog, what, kind):
    reader = READERS[what]
    path = reader.build(tmp_path)
    folder = reader.folder(path)
    (tmp_path / "beside.txt").write_text("the user's")
    _damage(kind, path, reader, monkeypatch)
    caplog.set_level(logging.WARNING)
    if reader.promise == "refused":
        before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                  and p.name != LOCK_NAME and p != path}
        with pytest.raises(LiteLVLMError) as e:
            reader.read(folder)
        message = str(e.value)
        assert "\n" not in message and str(path) in message, message
        monkeypatch.undo()
        assert {p: p.read_bytes() for p in before} == before   # nothing changed
    else:
        reader.read(folder)
        said = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        assert str(path) in said or str(path.parent) in said, said
    monkeypatch.undo()
    assert (tmp_path / "beside.txt").read_text() == "the user's"
    if kind == "link":
        assert (path.parents[2] / "elsewhere.json").exists()   # a link is removed, never what it points to


@pytest.mark.odd_case("damaged results", "the lock file (.lock) a folder or a link", "every command writing "
                      "--out", "one line naming it (exit 2)")
@pytest.mark.parametrize("kind", ["folder", "link"])
def test_a_damaged_lock_file_is_named(tmp_path, kind):
    out = tmp_path / "d"
    out.mkdir()
    if kind == "folder":
        (out / LOCK_NAME).mkdir()
    else:
        (tmp_path / "elsewhere").write_text("x")
        (out / LOCK_NAME).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LiteLVLMError) as e, RunFolder(out, command="sink", overwrite=False):
        pass
    assert str(out / LOCK_NAME) in str(e.value) and "\n" not in str(e.value)
    assert (tmp_path / "elsewhere").read_text() == "x" if kind == "link" else (out / LOCK_NAME).is_dir()
    shutil.rmtree(out)


def test_a_damaged_reference_of_another_folder_is_named_never_removed(tmp_path):
    path = _reference(tmp_path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(LiteLVLMError, match=f"--compare-to {path.parent}: {path} cannot be read"):
        load_reference(path.parent, own=False)
    assert path.exists()
