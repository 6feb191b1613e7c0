"""The headline helpers of :mod:`analysis.common.screen`: an estimate with its interval, or n where the
interval would be over too few units; counts for a reader, never a Python dict; ``--quiet`` silences the
headline only."""

from __future__ import annotations

import argparse
import math
import sys
import types
from dataclasses import dataclass

from analysis.common import command
from analysis.common.screen import counts_text, estimate, headline


def test_estimate_prints_the_interval_only_over_3_units_or_more():
    assert estimate(0.5123, 0.41, 0.6, n=40, unit="images") == "0.512 [0.410, 0.600]"
    assert estimate(0.5123, 0.0, 1.0, n=2, unit="videos") == "0.512 (n = 2 videos, no interval)"
    assert estimate(0.5, math.nan, math.nan, n=7) == "0.500 (n = 7, no interval)"
    assert estimate(math.nan, 0.1, 0.2, n=9) == "n/a"


def test_counts_text_reads_as_words():
    counts = {"excluded_no_inside_patch": 13, "excluded_unreadable": 0, "images_scored": 4}
    assert counts_text(counts, "excluded_") == "13 no inside patch"
    assert counts_text({}, "excluded_") == "none"


def test_quiet_silences_the_headline_but_not_the_banner(capsys, monkeypatch):
    headline("study", ["answer 1", "answer 2"], "RANDOM WEIGHTS (m): ...")
    assert capsys.readouterr().out == "study: answer 1\nstudy: answer 2\nRANDOM WEIGHTS (m): ...\n"
    monkeypatch.setattr(command, "QUIET", True)
    headline("study", ["answer 1"], "RANDOM WEIGHTS (m): ...")
    assert capsys.readouterr().out == "RANDOM WEIGHTS (m): ...\n"


def test_study_run_sets_quiet_for_the_run_only(monkeypatch):
    @dataclass
    class Args:
        out: str = "o"

    seen = []
    mod = types.ModuleType("_quiet_probe")
    mod.go = lambda a: seen.append(command.QUIET) or 0
    monkeypatch.setitem(sys.modules, "_quiet_probe", mod)
    run = command.study_run(Args, "_quiet_probe:go")
    assert run(argparse.Namespace(out="x", quiet=True)) == 0 and run(Args()) == 0
    assert seen == [True, False] and command.QUIET is False
    parser = argparse.ArgumentParser()
    command.with_quiet(lambda p: p.add_argument("--out"))(parser)
    assert parser.parse_args(["--out", "o", "--quiet"]).quiet is True
