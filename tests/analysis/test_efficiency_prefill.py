"""``efficiency --prefill captured --matmul-tflops``: the captured prefill timed, each row's arithmetic limit, the
overhead-bound note on screen."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.cli import main


@pytest.mark.slow
def test_captured_efficiency_rows_carry_their_limit(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["efficiency", "--arch", "tiny", "--out", str(out), "--methods", "none,litelvlm,fastv", "--budgets",
                 "64", "--attn", "sdpa", "--repeats", "1", "--warmup", "1", "--threads", "1", "--prefill", "captured",
                 "--capture", "compile-eager", "--matmul-tflops", "1e3"]) == 0
    df = pd.read_csv(out / "efficiency.csv")
    assert df["arithmetic_limit_ms"].gt(0).all() and (df["over_limit"] > 3).all()
    config = json.loads((out / "config.json").read_text())
    assert config["prefill"] == "captured" and config["matmul_tflops"] == "1e3"
    assert "efficiency: overhead-bound: 3 of 3 prefills" in capsys.readouterr().out
    assert (out / "efficiency_prefill.png").is_file()
