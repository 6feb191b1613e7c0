"""benchmarks/bench_throughput.py: the largest batch within a memory limit (a line through the measured batch
sizes; none for a method that runs at batch 1). Its measurements run in the benchmark and in gpu_check.sh's
dry run (slow)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_throughput import largest_batch, warmup_prompts  # noqa: E402


def test_the_largest_batch_is_read_off_a_line_through_the_measured_peaks():
    rows = pd.DataFrame({"batch_size": [1, 8, 32], "peak_mib": [12.0, 82.0, 322.0], "batched": [True] * 3})
    assert largest_batch(rows, 1024.0) == 102          # 2 MiB fixed + 10 MiB per prompt: (1024 - 2) // 10
    assert largest_batch(rows, 11.0) == 0              # not even one prompt fits
    pruned = rows.assign(peak_mib=[3.0, 24.0, 96.0])   # shorter sequences: more prompts fit the same limit
    assert largest_batch(pruned, 1024.0) > largest_batch(rows, 1024.0)


def test_a_method_that_runs_at_batch_one_has_no_largest_batch():
    rows = pd.DataFrame({"batch_size": [1, 8], "peak_mib": [12.0, 12.0], "batched": [False, False]})
    assert largest_batch(rows, 1024.0) is None


def test_a_full_warm_up_grounds_every_prompt_once_at_each_batch_size():
    """On CUDA (``--warmup auto``) every shape of the timed pass has run once, untimed: the first timed
    figures of a run (none at B = 1) are not its kernels' first calls."""
    assert [warmup_prompts(32, b, True, "full") for b in (1, 8, 32)] == [32, 32, 32]
    assert warmup_prompts(32, 1, False, "full") == 32             # prompt by prompt, every prompt
    assert [warmup_prompts(32, b, True, "short") for b in (1, 8, 32)] == [1, 2, 2]
    assert warmup_prompts(32, 8, False, "short") == 1 and warmup_prompts(1, 8, True, "short") == 1
