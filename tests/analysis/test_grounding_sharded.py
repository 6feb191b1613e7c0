"""`eval-grounding` sharded over two CPU processes equals the single-process run exactly.

The two processes are started with torch's own launcher (``torch.distributed.run``, the
environment-variable launch that ``accelerate`` reads): ``accelerate launch --cpu
--num_processes 2`` without an MPI host file starts only ONE process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.launch import torchrun

ROOT = Path(__file__).resolve().parents[2]


def _cmd(coco, out) -> list[str]:
    return ["eval-grounding", "--refer-dir", str(coco), "--out", str(out), "--model", "tiny-random:0",
            "--protocol", "official", "--image-ids", "34,71,81", "--chunk", "1", "--methods", "none,litelvlm",
            "--budgets", "16"]


# two processes of a real run (about 25 CPU-s); the part store's merge is tested in the default suite
@pytest.mark.slow
def test_two_processes_equal_one(coco128, tmp_path):
    env = {**os.environ, "LITELVLM_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1", "ACCELERATE_DISABLE_RICH": "1"}
    launch = torchrun(2)
    two = subprocess.run(launch + _cmd(coco128, tmp_path / "two"), env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "process 0/2" in two.stderr and "process 1/2" in two.stderr  # really two shards
    one = subprocess.run([sys.executable, "-m", "litelvlm.cli"] + _cmd(coco128, tmp_path / "one"), env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    # each process wrote its own chunks (images 34, 81 on rank 0; 71 on rank 1)
    parts = sorted(p.name for p in (tmp_path / "two" / "parts").glob("part-*.json"))
    assert len(parts) == 3
    rows_one = pd.read_parquet(tmp_path / "one" / "grounding.parquet")
    rows_two = pd.read_parquet(tmp_path / "two" / "grounding.parquet")
    assert set(rows_two["image_id"]) == {34, 71, 81}
    pd.testing.assert_frame_equal(rows_one, rows_two)
    assert (tmp_path / "one" / "summary.csv").read_text() == (tmp_path / "two" / "summary.csv").read_text()
