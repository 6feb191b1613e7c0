"""Storage that misbehaves: a full disk during a write, a cache folder that cannot be written, and two runs
sharing one cache at once. Each ends in correct results (with a warning where the cache is skipped) or an
exit-2 error naming the cause, with nothing partial left."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from litelvlm.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _reversal(refer: Path, out: Path) -> list[str]:
    return ["reversal", "--model", "tiny336-random", "--refer-dir", str(refer), "--limit-sentences", "6",
            "--layers", "2", "--out", str(out), "--threads", "1"]


@pytest.mark.odd_case("storage", "a full disk during a write", "reversal",
                       "one line naming the cause, exit 2; no table or temporary file left; a re-run resumes")
def test_a_full_disk_during_a_write_is_one_clear_error_and_leaves_nothing_partial(
    coco128, tmp_path, monkeypatch,
                                                                                   capsys):
    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half")  # what a write cut short leaves in the temporary file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    out = tmp_path / "out"
    assert main(_reversal(coco128, out)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing partial" in err and "Traceback" not in err
    # no table, no temporary file
    assert not list(out.glob("*.parquet")) and not list(out.rglob("*.litelvlm-tmp"))


def test_an_unwritable_cache_folder_is_skipped_with_a_warning_and_results_are_unchanged(coco128, tmp_path,
                                                                                        monkeypatch, caplog):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LITELVLM_CACHE", str(cache))
    assert main(_reversal(coco128, tmp_path / "a")) == 0  # the random model and the features are cached
    for sub in ("vision-features", "text-embeds"):  # a cache whose feature folders cannot be written
        for p in sorted((cache / sub).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (cache / sub).rmdir()
        (cache / sub).write_text("not a folder")
    with caplog.at_level("WARNING"):
        assert main(_reversal(coco128, tmp_path / "b")) == 0
    assert "cannot be written" in caplog.text and "LITELVLM_CACHE" in caplog.text
    for name in ("reversal.parquet", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_random_model_that_cannot_be_written_to_the_cache_is_an_error_naming_the_folder(coco128, tmp_path,
                                                                                         monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("LITELVLM_CACHE", str(blocker / "cache"))
    assert main(_reversal(coco128, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and "Traceback" not in err


@pytest.mark.slow  # heavy: the default suite keeps a lighter case of the same rule
@pytest.mark.odd_case("concurrency", "two runs sharing one fresh cache at once", "reversal x2",
                       "both finish with byte-identical tables")
def test_two_runs_sharing_one_cache_at_once_both_finish_with_the_same_tables(coco128, tmp_path):
    """Two processes start together on a fresh cache: both write the random model and the features (each
    write is atomic), and both tables are the same bytes."""
    env = {**os.environ, "LITELVLM_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess
        .Popen([sys.executable, "-m", "litelvlm.cli", *_reversal(coco128, tmp_path / name)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name in ("a", "b")]
    for p in runs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for name in ("reversal.parquet", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.odd_case("storage", "a broken symbolic link as --out", "every command writing --out (toy-data "
                                                                    "tried)",
                      "one line naming the link and where it points (exit 2), nothing created")
def test_a_broken_link_as_out_is_named_as_such(tmp_path, capsys):
    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "gone")
    assert main(["toy-data", "--out", str(link)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken symbolic link" in err[0] and "gone" in err[0], err
    assert "File exists" not in err[0] and not (tmp_path / "gone").exists()
