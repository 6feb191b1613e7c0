"""``litelvlm eval-video --model unipixel-tiny-random:0``: UniPixel's video path in the video study, every
method it offers at the per-frame budgets 196 and 81 (a per-frame fraction of the video's merged tokens),
resumable, its refusals before anything is written; and the runner's masks and budgets on a nudged model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from litelvlm.budget import Budget
from litelvlm.cli import main

MODEL = "unipixel-tiny-random:0"
FAST = ["--model", MODEL, "--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "4",
        "--synthetic-seed", "11"]


def official_eval_seg_summary(output_dict):
    """unipixel/eval/eval_seg.py L257-265 (PolyU-ChenLab/UniPixel @5c8e941), before the x 100 and rounding."""
    j = [output_dict[x][0] for x in output_dict]
    f = [output_dict[x][1] for x in output_dict]
    return float(np.mean(j)), float(np.mean(f)), float((np.mean(j) + np.mean(f)) / 2)


def test_offered_methods():
    from litelvlm.unipixel.video_eval import offered_methods

    methods = offered_methods()
    assert {"fastv", "divprune", "ivc-prune", "hiprune", "visionzip", "sparsevlm", "cdpruner", "litelvlm",
            "random"} <= set(methods)
    assert not {"vscan", "none", "llm-attention", "saliency"} & set(methods)


def _check_run(out, methods):
    from litelvlm.unipixel.video_eval import BUDGET_READING, video_budget

    s = pd.read_csv(out / "summary.csv")
    assert list(zip(s.method, s.budget, strict=True)) == [("none", 576)] + [(m, b) for m in methods
                                                                            for b in (196, 81)]
    per_patch = int(s.context_tokens.iloc[0])            # 4 frames: 2 temporal patches of N / 2 merged tokens
    n = 2 * per_patch
    for b in (196, 81):
        assert (s[s.budget == b].context_tokens == round(video_budget(n, Budget(b), 576) / 2)).all()
    assert (s.weights == "random").all() and (s.objects == 1).all()
    assert s[["J", "F", "J&F"]].apply(lambda c: c.between(0, 1)).all().all()
    config = json.loads((out / "config.json").read_text())
    assert config["family"] == "unipixel" and config["budget_reading"] == BUDGET_READING
    assert config["propagation"].startswith("sam2 (SAM 2's memory from frame 0")
    expr = pd.read_parquet(out / "expressions.parquet")
    assert len(expr) == len(s) and set(expr.anno_set) == {0}
    assert {"unipixel_J", "unipixel_F", "unipixel_J&F"} <= set(s.columns)


def test_cli_at_the_paper_budgets_and_resume(tmp_path):
    out = tmp_path / "video"
    argv = ["eval-video", "--out", str(out), *FAST, "--methods", "fastv,litelvlm"]
    assert main(argv) == 0
    _check_run(out, ["fastv", "litelvlm"])
    first = (out / "summary.csv").read_bytes()
    assert main(argv) == 0   # resumes
    assert (out / "summary.csv").read_bytes() == first


@pytest.mark.slow
def test_every_offered_method_by_default(tmp_path, caplog):
    """Every method the video path offers but the IPCV compositions, whose LLM layer (3) the tiny model's 2
    decoder layers lack: left out with a warning."""
    from litelvlm.unipixel.video_eval import offered_methods

    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST]) == 0
    too_deep = {"ipcv+dart", "ipcv+fastv"}
    _check_run(out, [m for m in offered_methods() if m not in too_deep])
    assert all(f"{m} left out of the default methods: --ipcv-llm-layer 3: {m}'s layer must be in 1..2"
               in caplog.text for m in too_deep)


def test_own_summary_equals_eval_seg():
    """UniPixel's score: means over expressions of their frame-mean J and F (eval_seg.py), per (method,
    budget)."""
    from litelvlm.unipixel.video_runner import own_summary

    rng = np.random.default_rng(0)
    pairs = [("none", 576), ("fastv", 196), ("fastv", 81)]
    expr = pd.DataFrame([{"video": f"v{k % 3}", "exp_id": str(k), "method": m, "budget": b, "J": rng.random(),
                          "F": rng.random()} for m, b in pairs for k in range(7)])
    summary = own_summary(pd.DataFrame({"method": [p[0] for p in pairs], "budget": [p[1] for p in pairs]}),
                          expr)
    for _, row in summary.iterrows():
        e = expr[(expr.method == row["method"]) & (expr.budget == row["budget"])]
        out_dict = {f"{v}_{x}": [j, f] for v, x, j, f in zip(e.video, e.exp_id, e.J, e.F, strict=True)}
        want = official_eval_seg_summary(out_dict)
        assert (row["unipixel_J"], row["unipixel_F"], row["unipixel_J&F"]) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("argv", [["--methods", "vscan"], ["--methods", "none"], ["--budgets", "577"],
                                  ["--methods", "fastvv"], ["--sam2-video-branch"],
                                  ["--allocation", "relevance"]])
def test_refused_before_writing(tmp_path, argv):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, *argv]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_non_square_budgets_run_on_unipixel(tmp_path):
    """The square-only pooling is VideoGLaMM's: UniPixel takes any per-frame budget."""
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--methods", "fastv", "--budgets", "120"]) == 0
    assert pd.read_csv(out / "summary.csv").budget.tolist() == [576, 120]


@pytest.mark.slow
def test_runner_masks_every_frame_at_the_video_budget(tmp_path):
    """On a model whose SAM 2 sees an object, the runner's masks are every frame's, scored as the study scores
    them."""
    from analysis.video.options import VideoArgs
    from litelvlm.unipixel.video_eval import video_budget
    from litelvlm.unipixel.video_runner import UniPixelRunner
    from litelvlm.video import metrics
    from litelvlm.video.datasets import load_ref_davis
    from litelvlm.video.synthetic import write_synthetic_videos

    rec = load_ref_davis(
        write_synthetic_videos(tmp_path / "data", videos=1, frames=3, size=(64, 48), seed=2))[0]
    run = UniPixelRunner(VideoArgs(out=str(tmp_path / "o"), model=MODEL), 576)
    with torch.no_grad():
        run.pipe.sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    masks, tokens, _ = run.expression(rec, "fastv", Budget(81))
    prep = run.pipe.with_sentences(run.prepared, [rec.sentence])
    n, t = run.pipe.num_visual(prep), int(prep.grid_thw[0, 0])
    assert masks.shape == (3, 48, 64) and masks.any() and tokens == round(video_budget(n, Budget(81), 576)
                                                                          / t)
    again, _, _ = run.expression(rec, "fastv", Budget(81))
    assert torch.equal(masks, again)                 # the prepared video is reused
    gt = np.stack([rec.mask(i) for i in range(3)])
    j, f = metrics.mevis_scores(gt, masks.numpy() > 0.5)
    assert 0 <= j <= 1 and 0 <= f <= 1
    assert video_budget(10, Budget(1), 576) == 1 and video_budget(10, Budget(576), 576) == 10
    assert video_budget(576, Budget(196), 576) == 196 and video_budget(10, Budget.ALL, 576) == 10


@pytest.mark.parametrize("method,why", [
    ("ipcv+dart", "--ipcv-llm-layer 3: ipcv+dart's layer must be in 1..2 for this model (2 decoder layers)"),
    ("flowcut", "[CLS]")])
def test_a_method_the_model_cannot_run_is_refused_before_any_part(tmp_path, capsys, method, why):
    out = tmp_path / "video"
    assert main(["eval-video", "--out", str(out), *FAST, "--methods", method]) == 2
    err = capsys.readouterr().err
    assert why in err and "none@576" not in err and not out.exists(), err
