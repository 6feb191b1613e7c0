"""The headline helpers of :mod:`analysis.common.presentation.screen`: an estimate with its interval, or n
where the interval would be over too few units; counts for a reader, never a Python dict; ``--quiet`` silences
the headline only, through the :class:`~analysis.common.runs.command.Screen` the command hands the study."""

from __future__ import annotations

import argparse
import math
import sys
import types
from dataclasses import dataclass

from analysis.common.presentation.screen import counts_text, estimate
from analysis.common.runs import command
from analysis.common.runs.command import Screen
from litelvlm.lazy import Lazy


def test_estimate_prints_the_interval_only_over_3_units_or_more():
    assert estimate(0.5123, 0.41, 0.6, n=40, unit="images") == "0.512 [0.410, 0.600]"
    assert estimate(0.5123, 0.0, 1.0, n=2, unit="videos") == "0.512 (n = 2 videos, no interval)"
    assert estimate(0.5, math.nan, math.nan, n=7) == "0.500 (n = 7, no interval)"
    assert estimate(math.nan, 0.1, 0.2, n=9) == "n/a"


def test_counts_text_reads_as_words():
    counts = {"excluded_no_inside_patch": 13, "excluded_unreadable": 0, "images_scored": 4}
    assert counts_text(counts, "excluded_") == "13 no inside patch"
    assert counts_text({}, "excluded_") == "none"


def test_quiet_silences_the_headline_but_not_the_banner(capsys):
    Screen().headline("study", ["answer 1", "answer 2"], "RANDOM WEIGHTS (m): ...")
    assert capsys.readouterr().out == "study: answer 1\nstudy: answer 2\nRANDOM WEIGHTS (m): ...\n"
    Screen(quiet=True).headline("study", ["answer 1"], "RANDOM WEIGHTS (m): ...")
    assert capsys.readouterr().out == "RANDOM WEIGHTS (m): ...\n"


def test_study_run_hands_the_study_the_screen_its_command_line_asks_for(monkeypatch):
    @dataclass
    class Args:
        out: str = "o"

    seen = []
    mod = types.ModuleType("_screen_probe")
    mod.go = lambda a, screen: seen.append(screen) or 0
    mod.silent = lambda a: seen.append(a.out) or 0   # a study that prints no table nor headline
    monkeypatch.setitem(sys.modules, "_screen_probe", mod)
    run = command.study_run(Args, Lazy("_screen_probe", "go"))
    assert run(argparse.Namespace(out="x", quiet=True, verbose=False)) == 0 and run(Args()) == 0
    assert run(argparse.Namespace(out="x", verbose=True)) == 0
    assert run(Args(), screen=Screen(verbose=True)) == 0   # a study run by another: the caller's screen
    assert run(argparse.Namespace(out="x", _argv=["probe", "--out", "x"])) == 0   # litelvlm.cli.main's
    assert seen == [Screen(quiet=True), Screen(), Screen(verbose=True), Screen(verbose=True),
                    Screen(argv=("probe", "--out", "x"))]
    silent = command.study_run(Args, Lazy("_screen_probe", "silent"))
    assert silent(argparse.Namespace(out="y", verbose=True)) == 0
    assert seen[-1] == "y"
    parser = argparse.ArgumentParser()
    command.with_quiet(lambda p: p.add_argument("--out"))(parser)
    assert parser.parse_args(["--out", "o", "--quiet"]).quiet is True


def test_no_global_verbosity():
    """What a command prints is the :class:`Screen` value it hands down, never a module's global."""
    from analysis.common.presentation import screen
    from litelvlm import cli

    assert not hasattr(cli, "VERBOSE") and not hasattr(command, "QUIET")
    assert not hasattr(screen, "verbose") and not hasattr(screen, "quiet")


def test_the_marks_legend_is_printed_only_where_a_mark_is_possible():
    """Under 6 units the paired swap test's smallest p (2 / 2^n) is above 0.05: no difference can be marked,
    and the headline says so instead of explaining marks that cannot appear."""
    import pandas as pd

    from analysis.common.presentation.screen import methods_headline

    for units in (1, 2, 5, 6, 12):
        summary = pd.DataFrame([{"method": m, "budget": b, "ciou": v, "n": 3 * units, "unit": "image",
                                 "units": units} for m, b, v in (("none", 576, 0.5), ("fastv", 64, 0.4))])
        comparisons = pd.DataFrame([{"metric": "ciou", "reference": "none", "method": "fastv", "budget": 64,
                                     "p": 0.5, "p_adjusted": 1.0, "family_size": 2, "units": units}])
        last = methods_headline(summary, {"ciou": "cIoU"}, comparisons=comparisons)[-1]
        if units < 6:
            assert last == (f"  no difference can be marked: n = {units} images, fewer than the paired "
                            "test's 6 (its smallest p is 2 / 2^n)"), last
        else:
            assert last.startswith("  † differs from none"), last
