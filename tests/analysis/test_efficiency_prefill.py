"""``efficiency --prefill captured --matmul-tflops``: the captured prefill timed, each row's arithmetic limit,
the overhead-bound note on screen."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.cli import main


@pytest.mark.slow
def test_captured_efficiency_rows_carry_their_limit(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(
        ["efficiency", "--arch", "tiny", "--out", str(out), "--methods", "none,litelvlm,fastv", "--budgets",
                 "64", "--attn", "sdpa", "--repeats", "1", "--warmup", "1", "--threads", "1", "--prefill",
                 "captured", "--capture", "compile-eager", "--matmul-tflops", "1e3"]) == 0
    df = pd.read_csv(out / "efficiency.csv")
    assert df["arithmetic_limit_ms"].gt(0).all() and (df["over_limit"] > 3).all()
    config = json.loads((out / "config.json").read_text())
    assert config["prefill"] == "captured" and config["matmul_tflops"] == "1e3"
    assert "efficiency: overhead-bound: 3 of 3 prefills" in capsys.readouterr().out
    assert (out / "efficiency_prefill.png").is_file()


@pytest.mark.slow
def test_captured_efficiency_of_videoglamm_times_the_captured_prefill(tmp_path, capsys):
    """VideoGLaMM's own timing (the sum of its parts) takes ``--prefill captured`` too: its prefill runs the
    captured Phi-3, and what ran eagerly (the CPU's activation measurement) is said once, naming each row."""
    out = tmp_path / "vg"
    assert main(["efficiency", "--arch", "videoglamm-tiny", "--out", str(out), "--methods", "none,litelvlm",
                 "--budgets", "81", "--attn", "eager", "--arrangements", "pool", "--repeats", "1", "--warmup",
                 "1", "--threads", "1", "--prefill", "captured", "--capture", "compile-eager",
                 "--no-figures"]) == 0
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if "ran eagerly" in ln]
    assert line.startswith("efficiency: --prefill captured: decoder-layer calls ran eagerly for a "
                           "tensor-tracking")
    assert line.endswith(": none@576, litelvlm@81 (pool)")
    assert json.loads((out / "config.json").read_text())["prefill"] == "captured"
    assert pd.read_csv(out / "efficiency.csv")["prefill_ms"].gt(0).all()
