"""Atomic result files: complete or absent, never partial, with ordinary permissions."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from litelvlm.runs.io import atomic_path, write_csv, write_json, write_parquet
from tests.fixtures.full_disk import STORAGE, full_save_file


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out" / "result.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert target.read_text().strip().startswith("{") and '"a": 1' in target.read_text()
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_a_stop_the_moment_the_temporary_file_exists_leaves_nothing(tmp_path, monkeypatch):
    """A stop (SIGTERM, Ctrl-C) landing as the temporary file beside a result has just been created, before
    the write holds its name: nothing is left beside the result."""
    target = tmp_path / "out" / "result.json"
    write_json(target, {"a": 1})
    real_open = os.open

    def open_then_stop(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".litelvlm-tmp"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_stop)
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("not reached")
    monkeypatch.undo()
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_results_get_the_usual_permissions_and_parquet_is_deterministic(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    write_parquet(tmp_path / "a.parquet", df)
    write_parquet(tmp_path / "b.parquet", df)
    write_csv(tmp_path / "c.csv", df)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    for name in ("a.parquet", "c.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.odd_case("storage", "a full disk met by a writer whose error is no OSError (safetensors' "
                      "SafetensorError, its errno in its text only)", "atomic_path (every result file)",
                      "an OSError naming the file (the command's one line); nothing partial left")
@pytest.mark.parametrize("name", sorted(STORAGE))
def test_a_writer_error_carrying_a_storage_errno_is_an_os_error_naming_the_file(name, tmp_path):
    target = tmp_path / "out" / "reference.safetensors"
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            full_save_file(STORAGE[name])({}, str(tmp))
    assert caught.value.errno == STORAGE[name] and caught.value.filename == str(target)
    assert caught.value.strerror == os.strerror(STORAGE[name])
    assert list(target.parent.iterdir()) == []
