"""`litelvlm eval-video`'s intervals over videos, comparisons.csv and claims.csv end to end (tiny random
VideoGLaMM, two synthetic videos, one annotator set): J's interval against a slow loop over the run's own
per-object rows, the tables' columns, the per-video table and summary.txt, the claims not judged on random
weights, and a resume with another --n-boot or --boot-seed that does not call the model."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main

ARGV = ["--anno-sets", "0", "--synthetic-videos", "2", "--synthetic-frames", "4", "--synthetic-seed", "11",
        "--methods", "vispruner,litelvlm", "--budgets", "81"]


@pytest.mark.slow  # the default suite's time budget (about 10 s each)
def test_intervals_over_videos_comparisons_and_claims(tmp_path, monkeypatch):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *ARGV, "--n-boot", "300", "--seed", "2"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    for metric in ("J", "F", "J&F"):
        at = list(summary.columns).index(metric)
        assert list(summary.columns[at:at + 4]) == [metric, f"{metric}_lo", f"{metric}_hi", f"{metric}_mc"]
    assert summary.columns[-1] == "weights"
    from analysis.common.stats import bootstrap as B
    from litelvlm.runs.parts import PartStore

    # DAVIS's per-object J of each part
    objects = pd.concat(PartStore(out).frames("objects"), ignore_index=True)
    stored = pd.read_parquet(out / "objects.parquet")   # the same rows, kept beside the tables
    assert stored.drop(columns="weights").sort_values(list(objects.columns)).reset_index(drop=True).equals(
        objects.sort_values(list(objects.columns)).reset_index(drop=True))
    videos = sorted(objects.video.unique())
    assert len(videos) == 2 and len(objects[objects.method == "none"]) > 2   # several objects in a video
    for _, s in summary.iterrows():
        # one annotator set: the set's J is the mean over every object of the drawn videos (a video drawn
        # twice counts twice); two videos would give the interval [0, 1], so none is given under 3 videos
        o = objects[(objects.method == s.method) & (objects.budget == s.budget)]
        stat = B.unit_stat(o.J.to_numpy(), o.video.to_numpy())
        assert all(pd.isna(x) for x in B.studentized(stat, 300, 2, bounds=(0.0, 1.0))[1:3])
        assert pd.isna(s.J_lo) and pd.isna(s.J_hi)
    # the per-unit table: each video's mean J and F over its objects; summary.txt is the table as printed
    per_video = pd.read_csv(out / "videos.csv")
    assert list(per_video.columns) == ["video", "method", "budget", "J", "F", "J&F", "objects", "weights"]
    for _, v in per_video.iterrows():
        o = objects[(objects.video == v.video) & (objects.method == v.method) & (objects.budget == v.budget)]
        assert (v.J, v.F, v.objects) == pytest.approx((o.J.mean(), o.F.mean(), len(o)))
    text = (out / "summary.txt").read_text()
    assert text.splitlines()[0].split()[:2] == ["method", "budget"] and "J_lo" not in text
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons.metric) == {"J", "F", "J&F"} and (comparisons.unit == "video").all()
    assert set(zip(comparisons.method, comparisons.reference)) == {
        ("litelvlm", "none"), ("vispruner", "none"), ("vispruner", "litelvlm")}
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims.claim) == ["retains_90pct", "margin_over_5pct"] and (claims.metric == "J&F").all()
    assert (claims.verdict == "not judged").all() and claims.compared_with.tolist() == ["none", "vispruner"]
    before = summary
    # parts reused
    assert main(["eval-video", "--out", str(out), *ARGV, "--n-boot", "50", "--seed", "2"]) == 0
    after = pd.read_csv(out / "summary.csv")
    old = ["method", "budget", "context_tokens", "J", "F", "J&F", "videos", "objects", "expressions",
           "llm_visual_tokens", "weights"]
    assert after[old].equals(before[old])
    from analysis.video import compute

    calls = []
    monkeypatch.setattr(compute, "video_part", lambda *a, **k: calls.append(a))
    assert main(
        ["eval-video", "--out", str(out), *ARGV, "--n-boot", "50", "--seed", "2", "--boot-seed", "9"]) == 0
    # the model is not called
    assert calls == [] and pd.read_csv(out / "summary.csv")[old].equals(before[old])
    import json

    assert json.loads((out / "config.json").read_text())["boot_seed"] == 9   # two videos: no interval moves
