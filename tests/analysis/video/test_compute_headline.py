"""``eval-video`` ends with its headline: the arrangement that ran and the visual tokens the LLM reads per
budget, then J&F per method and budget with its change from ``none`` and n; over fewer than 3 videos no
interval is printed (on screen or in summary.txt); ``--quiet`` silences the headline."""

from __future__ import annotations

import re

from litelvlm.cli import main

ARGV = ["eval-video", "--anno-sets", "0", "--synthetic-videos", "2", "--synthetic-frames", "4", "--methods",
        "litelvlm", "--budgets", "81", "--arrangement", "pool-min", "--n-boot", "50"]


def test_video_headline_names_the_arrangement_and_says_n_below_3_videos(tmp_path, capsys):
    out = tmp_path / "video"
    assert main([*ARGV, "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "{" not in shown and "}" not in shown
    lines = shown.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    tokens = re.fullmatch(r"eval-video: arrangement pool-min: visual tokens the LLM reads a prompt: unpruned "
                          r"(\d+); K=81 (\d+)", lines[-6])
    assert tokens and int(tokens.group(2)) < int(tokens.group(1)), lines[-6]   # pruning shortens the prompt
    assert re.fullmatch(r"eval-video: J&F per method and budget \(best first; no interval: fewer than 3 "
                        r"videos\), n = \d+ expressions on 2 videos:", lines[-5]), lines[-5]
    assert re.fullmatch(r"eval-video:   none \(every token\): J&F \d\.\d{4}", lines[-4])
    # two videos: the exact swap test has 4 patterns, so no p below 0.05 and no mark
    assert re.fullmatch(r"eval-video:   K=81: litelvlm J&F \d\.\d{4} \([+-]\d\.\d{4} vs none\)", lines[-3])
    assert lines[-2] == ("eval-video:   no difference can be marked: n = 2 videos, fewer than the paired "
                         "test's 6 (its smallest p is 2 / 2^n)"), lines[-2]
    text = (out / "summary.txt").read_text()
    assert "[0.0000, 1.0000" not in text and "(n = 2, no interval)" in text
    assert "units: the videos the intervals resample" in text
    assert main([*ARGV, "--out", str(out), "--quiet"]) == 0   # resumed: its parts are reused
    quiet = capsys.readouterr().out
    assert "J&F per method and budget (best first" not in quiet and "arrangement pool-min" not in quiet
    assert quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
