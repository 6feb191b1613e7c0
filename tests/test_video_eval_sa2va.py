"""``litelvlm eval-video --model sa2va-tiny-random:0``: Sa2VA's video path (the LLM sees the first min(5, T) frames,
SAM 2's memory carries the [SEG] prompt over the rest) in the video study, reached through the family registry;
the unpruned run is scored on a 6-frame video (5 frames to the LLM, the sixth by SAM 2's memory), a pruning method is
refused with its reason before anything is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.cli import main

MODEL = "sa2va-tiny-random:0"
FAST = ["--model", MODEL, "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "6",
        "--synthetic-seed", "11"]


def test_the_unpruned_run_is_scored(tmp_path):
    from litelvlm.sa2va.video_eval import BUDGET_READING

    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576)]
    assert s[["J", "F", "J&F"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (s.weights == "random").all() and (s.objects == 1).all() and (s.expressions == 1).all()
    expr = pd.read_parquet(out / "expressions.parquet")
    assert len(expr) == 1 and int(expr.llm_visual_tokens.iloc[0]) == 5 * int(expr.context_tokens.iloc[0]) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "sa2va" and config["budget_reading"] == BUDGET_READING and config["clip"] is None
    assert config["note"].startswith("Sa2VA's video numbers need its released weights")


@pytest.mark.parametrize("methods", ["fastv", "vispruner,litelvlm"])
def test_a_pruning_method_is_refused_with_its_reason(tmp_path, capsys, methods):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--methods", methods]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{methods.replace(',', ', ')}: pruning Sa2VA's video input is not offered: its visual tokens lie in one " \
           "block per frame" in err and err.endswith("(eval-video runs it without --methods)")


@pytest.mark.parametrize("argv", [["--sam2-video-branch"], ["--allocation", "relevance"], ["--methods", "none"]])
def test_other_options_are_refused_before_writing(tmp_path, argv):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, *argv]) == 2
    assert not out.exists()
