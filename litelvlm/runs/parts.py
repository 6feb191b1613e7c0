"""Resumable work: the one format every study writes its finished parts in (``OUT/parts/``).

A part covers one or more ids (images): ``part-<first>-<last>-<n>.parquet`` holds its rows, named side tables
go to ``part-...-<table>.parquet``, and ``part-...json``, the marker, is written LAST (atomically) with the
ids it covers and whatever the study records about them. A part counts as finished once its marker exists, so
an interrupted run resumes from the finished parts; a re-run computes only the ids no marker covers. Ids a
part tried but could not do (an unreadable image) are listed under ``skipped`` and not under ``ids``: the next
run retries them.

The marker also records the columns of each of its tables. A marker that does not parse or does not hold what
a marker holds (``ids`` a list of integers, ``skipped`` entries with an integer ``image_id``, ``keys`` a list
of lists), a folder or a link in its place, or tables that are truncated (a partial copy), unreadable or of
other columns than the marker recorded, is not a finished part: :meth:`PartStore.verify` removes it (with a
warning naming it and what is wrong) and the run recomputes those ids. A ``parts`` folder that is a link
leading out of the run's folder is refused (nothing is removed through it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import LiteLVLMError
from .io import read_json, write_json, write_parquet
from .records import inside
from .staging import current

log = logging.getLogger(__name__)

PREFIX = "part-"


def read_parquet(path: str | Path, **kw) -> pd.DataFrame:
    """``pd.read_parquet(path)``; a truncated or garbled file is a LiteLVLMError naming it."""
    try:
        return pd.read_parquet(current(path), **kw)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise LiteLVLMError(
            f"{path} is not a readable parquet table (truncated or partial copy?): {e}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def marker_problem(info: object) -> str | None:
    """What is wrong with a part marker's content (None: it holds what a marker holds)."""
    if not isinstance(info, dict):
        return f"is a JSON {type(info).__name__}, not a part marker"
    if not isinstance(info.get("ids"), list) or not all(_is_int(i) for i in info["ids"]):
        return "has 'ids' that are not a list of integers"
    skipped = info.get("skipped", [])
    if not isinstance(skipped, list) or not all(isinstance(e, dict) and _is_int(e.get("image_id"))
                                                for e in skipped):
        return "has 'skipped' entries without an integer image_id"
    keys = info.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, list) for k in keys):
        return "has 'keys' that are not a list of lists"
    columns = info.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(c, list) for c in columns.values()):
        return "has 'columns' that are not lists of names"
    return None


def _columns(path: Path) -> list[str] | None:
    """The columns of a parquet table (None: unreadable or truncated)."""
    try:
        return [n for n in pq.read_schema(path).names if not n.startswith("__index_level_")]
    except (pa.ArrowException, OSError):
        return None


class PartStore:
    """The finished parts of one ``--out`` folder."""

    def __init__(self, out: str | Path):
        self.folder = Path(out) / "parts"

    def markers(self) -> list[tuple[Path, dict]]:
        """(marker path, marker content) of every finished part, in file-name order; a part that repeats an
        earlier one (the same ids, keys and skipped ids) is left out, so no row is ever counted twice."""
        if not self.folder.is_dir():
            return []
        seen, out = set(), []
        for p in sorted(self.folder.glob(f"{PREFIX}*.json")):
            info = read_json(p)
            problem = marker_problem(info)
            if problem is not None:
                raise LiteLVLMError(f"{p} {problem}: not a part marker of this project (damaged?); delete it "
                                    "to compute its ids again")
            key = json.dumps({k: info.get(k) for k in ("ids", "keys", "skipped")}, sort_keys=True,
                             default=str)
            if key in seen:
                log.warning("part %s repeats an earlier part; left out", p)
                continue
            seen.add(key)
            out.append((p, info))
        return out

    def _tables(self, marker: Path) -> list[Path]:
        return sorted(self.folder.glob(f"{marker.stem}.parquet")) + \
            sorted(self.folder.glob(f"{marker.stem}-*.parquet"))

    def _problem(self, marker: Path) -> str | None:
        """What is wrong with a finished part (None: nothing)."""
        if marker.is_symlink() or not marker.is_file():
            return "is a link or a folder where a part marker should be"
        try:
            info = read_json(marker)
        except LiteLVLMError:
            return "cannot be read or is not valid JSON (truncated?)"
        problem = marker_problem(info)
        if problem is not None:
            return problem
        recorded = info.get("columns", {})
        for t in self._tables(marker):
            columns = None if t.is_symlink() else _columns(t)
            if columns is None:
                return f"has a table {t.name} that is truncated, unreadable or a link"
            name = t.stem[len(marker.stem) + 1:]
            if name in recorded and columns != recorded[name]:
                return f"has a table {t.name} whose columns are not those its part recorded"
        return None

    def verify(self) -> list[Path]:
        """Remove every part that is damaged (see the module's description), with a warning naming it and what
        is wrong: its ids are computed again. Returns the removed markers."""
        if self.folder.is_symlink():
            raise LiteLVLMError(f"{self.folder} is a link where the run's parts folder should be: nothing is "
                                "removed through it; remove the link, or use another --out")
        bad = []
        for p in sorted(self.folder.glob(f"{PREFIX}*.json")) if self.folder.is_dir() else []:
            problem = self._problem(p)
            if problem is not None:
                log.warning("part %s %s: removed, and its images are computed again", p, problem)
                for t in [*self._tables(p), p]:
                    inside(self.folder, t)
                    if t.is_dir() and not t.is_symlink():
                        shutil.rmtree(t)
                    elif os.path.lexists(t):
                        t.unlink()
                bad.append(p)
        return bad

    def done(self) -> set[int]:
        """Ids covered by finished parts."""
        return {int(i) for _, info in self.markers() for i in info["ids"]}

    def skipped(self) -> list[dict]:
        """The ``skipped`` entries of every part whose id no finished part covers, one per id."""
        done = self.done()
        out: dict[int, dict] = {}
        for _, info in self.markers():
            for s in info.get("skipped", []):
                if int(s["image_id"]) not in done:
                    out[int(s["image_id"])] = s
        return [out[i] for i in sorted(out)]

    def missing(self, ids: list[int], keys: list[tuple],
                legacy: list[tuple]) -> list[tuple[list[tuple], list[int]]]:
        """The work left for ``ids`` x ``keys`` (e.g. method/budget pairs) as (keys, ids) groups: ids no
        part covers get every key, finished ids only the keys no part holds yet (recorded under
        ``keys`` in the marker; a marker without them holds ``legacy``)."""
        covered: dict[int, set] = {}
        for _, info in self.markers():
            held = {tuple(k) for k in info.get("keys", legacy)}
            for i in info["ids"]:
                covered.setdefault(int(i), set()).update(held)
        groups: dict[tuple, list[int]] = {}
        for i in ids:
            todo = tuple(k for k in keys if tuple(k) not in covered.get(int(i), set()))
            if todo:
                groups.setdefault(todo, []).append(i)
        return [(list(k), i) for k, i in groups.items()]

    def write(self, ids: list[int], rows: pd.DataFrame, info: dict | None = None,
              tables: dict[str, pd.DataFrame] | None = None, tried: list[int] | None = None) -> Path:
        """Write one finished part covering ``ids``; the marker goes last. Returns the marker path.

        ``tried`` (default ``ids``): every id the part attempted, ids plus skipped ones; names the part.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(int(i) for i in ids)
        tried = sorted({int(i) for i in (tried if tried is not None else ids)} | set(ids))
        stem = f"{PREFIX}{tried[0]:012d}-{tried[-1]:012d}-{len(tried)}"
        n = 1
        while (self.folder / f"{stem}.json").exists():  # a part of another run with the same name
            n += 1
            stem = f"{PREFIX}{tried[0]:012d}-{tried[-1]:012d}-{len(tried)}.{n}"
        write_parquet(self.folder / f"{stem}.parquet", rows)
        for name, table in (tables or {}).items():
            write_parquet(self.folder / f"{stem}-{name}.parquet", table)
        marker = self.folder / f"{stem}.json"
        columns = {"": [str(c) for c in rows.columns],
                   **{name: [str(c) for c in table.columns] for name, table in (tables or {}).items()}}
        write_json(marker, {"ids": ids, **(info or {}), "columns": columns})
        return marker

    def frames(self, table: str | None = None) -> list[pd.DataFrame]:
        """The rows (or the side table ``table``) of every finished part that has them."""
        out = []
        for marker, _ in self.markers():
            path = marker.with_suffix(".parquet") if table is None else marker.with_name(
                f"{marker.stem}-{table}.parquet")
            if path.exists():
                out.append(read_parquet(path))
        return out
