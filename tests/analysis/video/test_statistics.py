"""`litelvlm eval-video`'s intervals over videos, comparisons.csv and claims.csv end to end (tiny random VideoGLaMM,
two synthetic videos, one annotator set): J's interval against a slow loop over the run's own per-object rows, the
tables' columns, the claims not judged on random weights, and a resume with another --n-boot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from litelvlm.cli import main

ARGV = ["--anno-sets", "0", "--synthetic-videos", "2", "--synthetic-frames", "4", "--synthetic-seed", "11",
        "--methods", "vispruner,litelvlm", "--budgets", "81"]


def test_intervals_over_videos_comparisons_and_claims(tmp_path):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *ARGV, "--n-boot", "300", "--seed", "2"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    for metric in ("J", "F", "J&F"):
        at = list(summary.columns).index(metric)
        assert list(summary.columns[at:at + 3]) == [metric, f"{metric}_lo", f"{metric}_hi"]
    assert summary.columns[-1] == "weights"
    from analysis.common.parts import PartStore

    objects = pd.concat(PartStore(out).frames("objects"), ignore_index=True)   # DAVIS's per-object J of each part
    videos = sorted(objects.video.unique())
    assert len(videos) == 2 and len(objects[objects.method == "none"]) > 2   # several objects in a video
    idx = np.random.default_rng(2).integers(0, 2, size=(300, 2))
    for _, s in summary.iterrows():
        # one annotator set: the set's J is the mean over every object of the drawn videos (a video drawn twice
        # counts twice)
        o = objects[(objects.method == s.method) & (objects.budget == s.budget)]
        reps = [np.mean([j for i in draw for j in o[o.video == videos[i]].J]) for draw in idx]
        assert (s.J_lo, s.J_hi) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons.metric) == {"J", "F", "J&F"} and (comparisons.unit == "video").all()
    assert set(zip(comparisons.method, comparisons.reference)) == {
        ("litelvlm", "none"), ("vispruner", "none"), ("vispruner", "litelvlm")}
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims.claim) == ["retains_90pct", "margin_over_5pct"] and (claims.metric == "J&F").all()
    assert (claims.verdict == "not judged").all() and claims.compared_with.tolist() == ["none", "vispruner"]
    before = summary
    assert main(["eval-video", "--out", str(out), *ARGV, "--n-boot", "50", "--seed", "2"]) == 0   # parts reused
    after = pd.read_csv(out / "summary.csv")
    old = ["method", "budget", "context_tokens", "J", "F", "J&F", "videos", "objects", "expressions",
           "llm_visual_tokens", "weights"]
    assert after[old].equals(before[old])
