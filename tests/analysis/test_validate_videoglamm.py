"""``litelvlm validate`` on the video family, VideoGLaMM (tiny random weights, CPU): the first video of the
synthetic set (the default input of a video model) and its first expression, per-frame budgets, the checks
adapted for video (masks of the clip's frame count and the frames' size; a budget of all 576 with nothing
pruned equals ``none``).

The fast test runs DivPrune (LLM-side); the slow one every method the family offers
at 576, 196 and 81 (``videoglamm-tiny-random:0`` has 2 decoder layers: FastV runs with ``--fastv-layer 1`` so
that it prunes inside the LLM; SparseVLM's three stages need more layers, so the default methods leave it
out). The real size (``videoglamm-random:0``, bfloat16) runs the same code; it is not run here (about 10 GB).
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import pandas as pd
import pytest

from litelvlm.cli import main

MODEL = "videoglamm-tiny-random:0"


def _validate(out, *extra) -> tuple[int, str]:
    screen = io.StringIO()
    with contextlib.redirect_stdout(screen):
        rc = main(["validate", "--model", MODEL, "--out", str(out), "--threads", "1", *map(str, extra)])
    return rc, screen.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate_videoglamm") / "out"
    rc, screen = _validate(out, "--methods", "divprune", "--budgets", "576,81", "--no-figures")
    assert rc == 0, screen
    return out, screen


def test_one_video_through_the_pruned_model(run):
    out, screen = run
    rows = pd.read_parquet(out / "validate.parquet").set_index(["method", "budget"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["image_id"] == "shapes-000" and cfg["video_dir"] is None and cfg["model"] == MODEL
    assert set(rows.index) == {("none", 576), ("divprune", 576), ("divprune", 81)}
    text = int(rows.loc[("none", 576), "text_tokens"])
    assert rows.loc[("none", 576), "visual_tokens_input"] == 3328 and rows.loc[("none", 576),
                                                                               "seq_len"] == text + 3328
    # an LLM-side method: round(3328 K / 576) of the LLM's visual tokens
    assert rows.loc[("divprune", 81), "visual_tokens_input"] == 468 and rows.loc[
        ("divprune", 81), "prune_layer"] == 0
    # 8 frames of 64x48
    assert (rows["mask_shape"] == "1x8x48x64").all() and (rows["mask_dtype"] == "bool").all()
    full = rows.loc[("divprune", 576)]  # all 576 a frame: nothing pruned, none's logits exactly
    assert full["keeps_all_in_order"] and full["masks_equal_none"] and full["max_logit_diff_none"] == 0
    assert not rows.loc[("divprune", 81), "keeps_all_in_order"]
    assert rows.loc[("divprune", 81), "max_logit_diff_none"] > 0
    timed = ["prefill_ms", "paper_prefill_ms", "e2e_ms", "llm_activation_mb", "activation_mb", "peak_rss_gib"]
    assert all(math.isfinite(v) and v > 0 for v in rows[timed].to_numpy().ravel())
    checks = pd.read_csv(out / "checks.csv").set_index("check")["passed"]
    assert checks.all() and checks["masks are bool 1x8x48x64"] and checks["methods keeping all 576 tokens in "
                                                                          "order equal none"]
    ratios = pd.read_csv(out / "ratios.csv").set_index(["method", "budget"])
    flops = ratios["flops_ideal_speedup"]  # counted on the video prompt's LLM tokens
    assert flops[("divprune", 81)] > 1
    assert flops[("divprune", 576)] == 1.0 and ratios["paper_def_tflops"].gt(0).all()
    report = (out / "report.md").read_text()
    assert "N = 3328 visual tokens (16 frames x 144 CLIP context + 16 x 64 InternVideo2 tokens)" in report
    assert ("budgets are per frame" in report and "RANDOM WEIGHTS" in screen
            and "this model is `videoglamm`" in screen)


@pytest.mark.parametrize(("argv", "why"), [(["--methods", "cdpruner"], "reads one image's CLIP trace"),
                                           (["--refer-dir", "."], "video model"),
                                           (["--budgets", "577"], "budget must satisfy 1 <= K <= 576")])
def test_refused_before_writing(tmp_path, argv, why, capsys):
    out = tmp_path / "run"
    assert _validate(out, *argv)[0] == 2 and why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_every_offered_method_at_the_papers_budgets(tmp_path):
    """No ``--methods``: every method the family offers on the model, the oracles aside (SparseVLM left out: 2
    layers)."""
    from litelvlm.methods import available_methods
    from litelvlm.registry.families import load_pipeline

    out = tmp_path / "run"
    assert _validate(out, "--fastv-layer", 1)[0] == 0
    rows = pd.read_parquet(out / "validate.parquet").set_index(["method", "budget"])
    pipe = load_pipeline(MODEL)
    offered = {m for m in available_methods() if pipe.method_error(m) is None and not pipe.spec(m).oracle}
    offered -= {"sparsevlm"}
    assert set(rows.index.get_level_values(0)) == offered and {"fastv", "litelvlm", "vispruner"} <= offered
    assert rows.loc[("fastv", 81), "visual_tokens_input"] == 3328 and rows.loc[("fastv", 81),
                                                                               "visual_tokens_kept"] == 468
    # a CLIP-side method (pool): 144 a frame + the video stream reach the LLM, FLOPs ratio 1; at 576 it equals
    # none
    assert rows.loc[("random", 81), "visual_tokens_input"] == 3328 and rows.loc[("random", 81),
                                                                                "selection_ms"] > 0
    assert rows.loc[("random", 576), "keeps_all_in_order"] and rows.loc[("random", 576),
                                                                        "max_logit_diff_none"] == 0
    flops = pd.read_csv(out / "ratios.csv").set_index(["method", "budget"])["flops_ideal_speedup"]
    assert flops[("random", 81)] == 1.0 and flops[("fastv", 81)] > 1
    assert pd.read_csv(out / "checks.csv")["passed"].all()
