"""``efficiency``'s timed ratios carry the spread of their interleaved repeats: new columns only."""

from __future__ import annotations

import math

import pandas as pd

from litelvlm.cli import main


def test_timed_ratios_carry_the_spread_of_their_paired_repeats(tmp_path, capsys):
    out = tmp_path / "eff"
    assert main(["efficiency", "--arch", "tiny", "--methods", "none", "litelvlm", "--budgets", "576", "64",
                 "--attn", "eager", "--repeats", "3", "--warmup", "0", "--no-figures", "--out", str(out),
                 "-v"]) == 0
    assert "median [min, max] of the per-round paired ratios" in capsys.readouterr().out
    df, cmp = pd.read_csv(out / "efficiency.csv"), pd.read_csv(out / "comparison.csv")
    for table in (df, cmp):
        for ratio in ("prefill_speedup", "paper_def_prefill_speedup"):
            for _, r in table.iterrows():
                lo, med, hi = r[f"{ratio}_min"], r[ratio], r[f"{ratio}_max"]
                assert all(math.isfinite(v) for v in (lo, med, hi)) and lo <= med * (
                    1 + 1e-9) and med <= hi * (1 + 1e-9)
    cols = list(cmp.columns)
    assert cols.index("prefill_speedup_min") == cols.index("prefill_speedup") + 1
