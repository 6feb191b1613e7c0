"""benchmarks/bench_throughput.py: the largest batch within a memory limit (a line through the measured batch
sizes; none for a method that runs at batch 1). Its measurements run in the benchmark and in gpu_check.sh's
dry run (slow); under the captured prefill a batch shares one captured forward."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_throughput import largest_batch, main, measure, warmup_prompts  # noqa: E402


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


def test_a_batch_under_the_captured_prefill_shares_one_captured_forward(tiny_glamm, monkeypatch):
    """Under ``--prefill captured`` (dynamo's eager backend here) a method that can batch shares the LLM's
    forward at B > 1: ``batched`` True, ``llm_batch`` (the most sequences one forward held in the timed pass)
    the batch size, and every decoder-layer call of the timed pass captured (FastV, prompt by prompt: the dry
    run below)."""
    import numpy as np
    import torch
    from PIL import Image

    from litelvlm.llm.captured import install, uninstall
    from litelvlm.machine import memory

    # the peak is measured in its own, untimed pass
    monkeypatch.setattr(memory, "peak_activation_bytes", lambda fn, device: (0, None))
    rng = np.random.default_rng(0)
    preps = [tiny_glamm.with_sentences(tiny_glamm.prepare_image(Image.fromarray(
        rng.integers(0, 255, (40 + 9 * i, 50, 3), dtype=np.uint8)), seed=0), [s])
        for i, s in enumerate(["a dog", "the red cup on the left"])]
    torch._dynamo.reset()
    install(tiny_glamm.language_model, "fused-eager")
    try:
        rows = measure(tiny_glamm, preps, "litelvlm", 8, [1, 2], 1, "cpu")
    finally:
        uninstall(tiny_glamm.language_model)
        torch._dynamo.reset()
    assert [(r["batched"], r["llm_batch"], r["prefill"]) for r in rows] == [(True, 1, "captured"),
                                                                            (True, 2, "captured")]


@pytest.mark.slow
def test_the_dry_run_batches_under_the_captured_prefill_on_a_cpu(tmp_path, capsys):
    """``--dry-run``: the tiny GLaMM on a CPU under the captured prefill (``fused-eager``), B = 1 and 2, one
    budget, one repeat; its table says which rows shared a captured forward. ``--sub-batch-bytes none``: one
    forward per batch whatever this CPU's last-level cache (``auto`` splits the unpruned pair where two
    576-token eager attentions outgrow it: a 32 MiB L3 does)."""
    assert main(["--dry-run", "--methods", "none", "litelvlm", "fastv", "--sub-batch-bytes", "none", "--out",
                 str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "throughput.csv").set_index(["method", "batch_size"])
    assert sorted(set(table.index)) == [(m, b) for m in ("fastv", "litelvlm", "none") for b in (1, 2)]
    assert set(table["budget"].astype(str)) == {"all", "64"} and set(table["prefill"]) == {"captured"}
    assert [table.loc[(m, 2), "llm_batch"] for m in ("none", "litelvlm", "fastv")] == [2, 2, 1]
    assert list(table.loc[[("none", 2), ("litelvlm", 2), ("fastv", 2)], "batched"]) == [True, True, False]
    assert "prefill captured (fused-eager)" in capsys.readouterr().out
