"""Resumable work: the one format every study writes its finished parts in (``OUT/parts/``).

A part covers one or more ids (images): ``part-<first>-<last>-<n>.parquet`` holds its rows, named
side tables go to ``part-...-<table>.parquet``, and ``part-...json``, the marker, is written LAST
(atomically) with the ids it covers and whatever the study records about them. A part counts as
finished once its marker exists, so an interrupted run resumes from the finished parts; a re-run
computes only the ids no marker covers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from litelvlm.io import write_json, write_parquet

PREFIX = "part-"


class PartStore:
    """The finished parts of one ``--out`` folder."""

    def __init__(self, out: str | Path):
        self.folder = Path(out) / "parts"

    def markers(self) -> list[tuple[Path, dict]]:
        """(marker path, marker content) of every finished part, in file-name order."""
        if not self.folder.is_dir():
            return []
        return [(p, json.loads(p.read_text())) for p in sorted(self.folder.glob(f"{PREFIX}*.json"))]

    def done(self) -> set[int]:
        """Ids covered by finished parts."""
        return {int(i) for _, info in self.markers() for i in info["ids"]}

    def write(self, ids: list[int], rows: pd.DataFrame, info: dict | None = None,
              tables: dict[str, pd.DataFrame] | None = None) -> Path:
        """Write one finished part covering ``ids``; the marker goes last. Returns the marker path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(int(i) for i in ids)
        stem = f"{PREFIX}{ids[0]:012d}-{ids[-1]:012d}-{len(ids)}"
        write_parquet(self.folder / f"{stem}.parquet", rows)
        for name, table in (tables or {}).items():
            write_parquet(self.folder / f"{stem}-{name}.parquet", table)
        marker = self.folder / f"{stem}.json"
        write_json(marker, {"ids": ids, **(info or {})})
        return marker

    def frames(self, table: str | None = None) -> list[pd.DataFrame]:
        """The rows (or the side table ``table``) of every finished part that has them."""
        out = []
        for marker, _ in self.markers():
            path = marker.with_suffix(".parquet") if table is None else marker.with_name(f"{marker.stem}-{table}.parquet")
            if path.exists():
                out.append(pd.read_parquet(path))
        return out
