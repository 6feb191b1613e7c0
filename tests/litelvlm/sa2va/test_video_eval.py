"""``litelvlm eval-video --model sa2va-tiny-random:0``: Sa2VA's video path (the LLM sees the first min(5, T)
frames, SAM 2's memory carries the [SEG] prompt over the rest) in the video study, reached through the family
registry; the unpruned run and the pruned ones (K = round(N b / 576) of the N merged tokens of the frames the
LLM sees, this project's adaptation) are scored on a 6-frame video (5 frames to the LLM, the sixth by SAM 2's
memory); a method reading one image's vision tower is refused with its reason before anything is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.cli import main

MODEL = "sa2va-tiny-random:0"
FAST = ["--model", MODEL, "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "6",
        "--synthetic-seed", "11"]


def test_the_unpruned_and_pruned_runs_are_scored(tmp_path):
    from litelvlm.sa2va.video_eval import BUDGET_READING

    out = tmp_path / "video"
    assert main(
        ["eval-video", "--out", str(out), *FAST, "--methods", "fastv,litelvlm", "--budgets", "196"]) == 0
    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576), ("fastv", 196), ("litelvlm", 196)]
    assert s[["J", "F", "J&F"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (s.weights == "random").all() and (s.objects == 1).all() and (s.expressions == 1).all()
    expr = pd.read_parquet(out / "expressions.parquet")
    n = int(expr[expr.method == "none"].llm_visual_tokens.iloc[0])
    assert n == 5 * int(expr[expr.method == "none"].context_tokens.iloc[0]) > 0
    k = max(1, round(n * 196 / 576))
    assert (expr[expr.method != "none"].llm_visual_tokens == k).all()
    assert (expr[expr.method != "none"].context_tokens == round(k / 5)).all()
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "sa2va" and config["budget_reading"] == BUDGET_READING
    assert config["clip"] == "tiny336-random:0" and "this project's adaptation" in config["video_pruning"]
    assert config["note"].startswith("Sa2VA's video numbers need its released weights")
    # recorded: a folder of the earlier PIL resize is not resumed
    assert config["image_resize"] == "torchvision"


@pytest.mark.slow   # a second video run; the refusal below and test_sa2va.py's pixels are the default checks
def test_the_pil_resize_option_runs_and_is_recorded(tmp_path):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--methods", "fastv", "--budgets", "196",
                 "--image-resize", "pil"]) == 0
    assert json.loads((out / "config.json").read_text())["image_resize"] == "pil"


@pytest.mark.odd_case("arguments", "--image-resize pil for a family whose processor resizes nothing "
                      "(UniPixel)",
                      "eval-video", "exit 2, one line naming the option, the model and the family offering "
                      "it; --out not created")
def test_image_resize_is_refused_for_a_family_without_it(tmp_path, capsys):
    from tests.fixtures.cli import one_error_line

    out = tmp_path / "video"
    rc = main(["eval-video", "--out", str(out), "--model", "unipixel-tiny-random:0", "--image-resize", "pil"])
    line = one_error_line(rc, capsys.readouterr().err, "eval-video")
    assert "--image-resize pil" in line and "unipixel-tiny-random:0" in line and "offered by: sa2va" in line
    assert not out.exists()


def test_offered_methods():
    from litelvlm.sa2va.video_eval import offered_methods

    methods = offered_methods()
    assert {"fastv", "divprune", "ivc-prune", "dart", "sparsevlm", "cdpruner", "litelvlm",
            "random"} <= set(methods)
    assert not {"vscan", "hiprune", "tome", "visionzip", "none", "llm-attention", "saliency"} & set(methods)


@pytest.mark.parametrize("methods", ["tome", "vispruner,litelvlm"])
def test_a_method_reading_one_images_tower_is_refused_with_its_reason(tmp_path, capsys, methods):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--methods", methods]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    name = methods.split(",")[0]
    assert (f"{name} reads Qwen2.5-VL's vision tower over one image's grid; Sa2VA's video gives the tower "
            "min(5, T) images" in err)


@pytest.mark.parametrize("argv",
                         [["--sam2-video-branch"], ["--allocation", "relevance"], ["--methods", "none"]])
def test_other_options_are_refused_before_writing(tmp_path, argv):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, *argv]) == 2
    assert not out.exists()
