"""``litelvlm eval-video`` sharded across processes (``analysis.common.runs.shards``, the mechanism
``eval-grounding`` shares): each process segments its own videos (``rank::P``), the main one merges every
part, and the tables equal the single-process run's byte for byte; a partial sharded folder resumes like a
single run's.

The default test runs the two processes' shares in one interpreter (a fake video path, the second process's
share run while the first waits for it); the slow one launches two CPU processes with
``torch.distributed.run`` on the tiny random VideoGLaMM."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from litelvlm.cli import main
from litelvlm.runs.run_folder import RunFolder
from tests.analysis.video import test_compute_budgets
from tests.fixtures.launch import torchrun

ROOT = Path(__file__).resolve().parents[3]
TABLES = ("summary.csv", "expressions.parquet", "comparisons.csv", "claims.csv")
#: the fake video path (a fixture: each expression segmented by its own ground truth, the calls recorded)
fake = test_compute_budgets.fake


class FakeShards:
    """Process ``rank`` of ``world`` in one interpreter: ``wait`` runs ``at_wait`` (the other processes' work)
    once."""

    def __init__(self, rank: int, world: int, at_wait=None) -> None:
        self.rank, self.world, self.at_wait = rank, world, at_wait
        self.is_main = rank == 0

    def device(self, device):
        return device

    def loading(self):
        return contextlib.nullcontext()

    def folder(self, out, command=None):
        return RunFolder(out, command=command) if self.is_main else contextlib.nullcontext()

    def wait(self) -> None:
        hook, self.at_wait = self.at_wait, None
        if hook:
            hook()

    def share(self, items):
        return list(items[self.rank::self.world])

    def label(self) -> str:
        return f"process {self.rank}/{self.world}"


def _argv(out) -> list[str]:
    return ["eval-video", "--out", str(out), "--anno-sets", "0,1", "--synthetic-videos", "3",
            "--synthetic-frames", "3", "--methods", "litelvlm", "--budgets", "81", "--n-boot", "20"]


def _sharded(monkeypatch, out) -> list[int]:
    """Run ``out`` as two processes in turn; returns the process each expression call came from."""
    import analysis.video.compute as compute

    calls: list[int] = []
    second = FakeShards(1, 2)
    first = FakeShards(0, 2, at_wait=lambda: calls.append(main(_argv(out))))   # process 1 runs while 0 waits
    made = iter([first, second])
    with monkeypatch.context() as m:
        m.setattr(compute, "Shards", lambda device: next(made))
        assert main(_argv(out)) == 0 and calls == [0]
    return calls


def _tables(out) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


def test_two_processes_split_the_videos_and_merge_to_the_single_run(tmp_path, fake, monkeypatch):
    assert main(_argv(tmp_path / "one")) == 0
    one = _tables(tmp_path / "one")
    single = [(v, m, b.column) for v, m, b in fake.seen["expression"]]
    fake.seen["expression"].clear()

    _sharded(monkeypatch, tmp_path / "two")
    got = [(v, m, b.column) for v, m, b in fake.seen["expression"]]
    videos = list(dict.fromkeys(v for v, _, _ in single))
    assert len(videos) == 3
    # process 1 (run first here) segments the second video; process 0 the first and the third
    assert list(dict.fromkeys(v for v, _, _ in got)) == [videos[1], videos[0], videos[2]]
    assert sorted(got) == sorted(single)   # every expression once, none twice
    assert _tables(tmp_path / "two") == one
    assert sorted(p.name for p in (tmp_path / "one" / "parts").glob("part-*")) == \
        sorted(p.name for p in (tmp_path / "two" / "parts").glob("part-*"))


@pytest.mark.odd_case("faults", "a sharded run stopped with parts unfinished (a part's rows written, its "
                      "marker not)", "eval-video on two processes",
                      "a sharded or a single-process re-run computes only the unfinished parts; the tables "
                      "equal a whole single run's byte for byte")
def test_a_partial_sharded_folder_resumes_sharded_or_alone(tmp_path, fake, monkeypatch):
    """A sharded run stopped with some parts finished (one part's rows written, its marker not yet): a sharded
    rerun and a single-process rerun each compute only the unfinished parts, and the tables equal a whole
    single run's."""
    assert main(_argv(tmp_path / "one")) == 0
    one = _tables(tmp_path / "one")
    fake.seen["expression"].clear()
    out = tmp_path / "two"
    _sharded(monkeypatch, out)
    markers = sorted((out / "parts").glob("part-*.json"))
    assert len(markers) == 6   # 3 videos x (none, litelvlm @ 81)
    for name in TABLES:
        (out / name).unlink()
    alone = tmp_path / "alone"
    shutil.copytree(out, alone)
    for folder in (out, alone):   # killed: two parts unfinished (their markers are written last)
        for marker in markers[:2]:
            (folder / "parts" / marker.name).unlink()
    unfinished = sum(len(pd.read_parquet(out / "parts" / m.with_suffix(".parquet").name))
                     for m in markers[:2])
    fake.seen["expression"].clear()
    _sharded(monkeypatch, out)
    assert len(fake.seen["expression"]) == unfinished > 0   # the unfinished parts' expressions, nothing else
    assert _tables(out) == one
    fake.seen["expression"].clear()
    assert main(_argv(alone)) == 0   # the same partial folder, resumed by one process
    assert len(fake.seen["expression"]) == unfinished and _tables(alone) == one


VIDEO = ["--anno-sets", "0", "--synthetic-videos", "2", "--synthetic-frames", "2", "--methods", "litelvlm",
         "--budgets", "81", "--n-boot", "20"]


# two processes of the tiny random VideoGLaMM (about 40 CPU-s); the merge is the default test above
@pytest.mark.slow
def test_two_cpu_processes_equal_one(tmp_path):
    env = {**os.environ, "LITELVLM_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "ACCELERATE_DISABLE_RICH": "1"}
    launch = torchrun(2)
    two = subprocess.run(launch + ["eval-video", "--out", str(tmp_path / "two"), *VIDEO], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert two.returncode == 0, two.stderr[-3000:]
    # really two shards
    assert "process 0/2: 1 video(s)" in two.stderr and "process 1/2: 1 video(s)" in two.stderr
    one = subprocess.run(
        [sys.executable, "-m", "litelvlm.cli", "eval-video", "--out", str(tmp_path / "one"), *VIDEO],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    assert _tables(tmp_path / "two") == _tables(tmp_path / "one")
    assert len(pd.read_parquet(tmp_path / "two" / "expressions.parquet").video.unique()) == 2
    # resumed sharded: a part removed is computed again, the rest reused, the tables unchanged
    first = sorted((tmp_path / "two" / "parts").glob("part-*.json"))[0]
    first.unlink()
    again = subprocess.run(launch + ["eval-video", "--out", str(tmp_path / "two"), *VIDEO], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(" @ ") == 1   # one (video, method, budget) part computed again
    assert _tables(tmp_path / "two") == _tables(tmp_path / "one")
