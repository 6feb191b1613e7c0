"""The leaderboard's columns end to end on ``eval-video`` (tiny random VideoGLaMM, one synthetic video of two
frames): loyalty from the masks the parts now keep, the share of J&F, the difference from ``random`` with its
paired test, the attention flag; no layer average (a video family's schedule is not read)."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main

ARGV = ["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "2", "--synthetic-seed", "11",
        "--methods", "litelvlm,random", "--budgets", "16", "--n-boot", "10"]


def test_video_summary_has_the_columns_that_apply(tmp_path):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *ARGV]) == 0
    s = pd.read_csv(out / "summary.csv").set_index("method")
    assert s.loc["none", "loyalty"] == 1.0 and s["loyalty"].between(0, 1).all()
    assert s.loc["none", "share_of_unpruned_J&F"] == 1.0 and (s["share_of_unpruned_J&F"] > 0).all()
    assert 0 <= s.loc["litelvlm", "p_adjusted_vs_random_J&F"] <= 1
    assert s.loc["litelvlm", "diff_vs_random_J&F"] == pytest.approx(s.loc["litelvlm", "J&F"]
                                                                    - s.loc["random", "J&F"])
    assert s["reads_attention"].eq(False).all()   # none of them reads LLM attention weights
    assert "layer_avg_tokens" not in s and list(s.columns)[-1] == "weights"
    expressions = pd.read_parquet(out / "expressions.parquet")
    assert expressions.loc[expressions.method == "none", "loyalty"].eq(1.0).all()
