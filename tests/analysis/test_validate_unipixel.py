"""``litelvlm validate`` on the second model family, UniPixel (tiny random weights, CPU): the LLM-side methods
the family offers, budgets planned against the image's own N, one expression per prompt (its protocol), checks
passed.

``unipixel-tiny-random:0`` has 2 decoder layers: FastV runs with ``--fastv-layer 1`` so that it prunes inside
the LLM; DART's official layer (2) is after the last one there, so no layer sees its K tokens (FLOPs ratio 1).
Its SAM 2 object-score gate is closed on these images (every mask logit is -1024), so the mask checks compare
constants; seed 5 opens it, and the last test checks a budget of all N against ``none`` on real mask logits.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math

import pandas as pd
import pytest

from analysis.validate import ValidateArgs
from analysis.validate.inputs import check_methods
from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError

METHODS = ("none", "fastv", "dart", "divprune")


def _validate(coco, out, model: str, *extra) -> tuple[int, str]:
    screen = io.StringIO()
    with contextlib.redirect_stdout(screen):
        rc = main(
            ["validate", "--model", model, "--refer-dir", str(coco), "--out", str(out), "--repeats", "1",
                   "--threads", "1", "--no-figures", *map(str, extra)])
    return rc, screen.getvalue()


@pytest.fixture(scope="module")
def tiny_run(coco128, tmp_path_factory):
    out = tmp_path_factory.mktemp("validate_unipixel") / "out"
    rc, screen = _validate(coco128, out, "unipixel-tiny-random:0", "--methods", ",".join(METHODS),
                           "--budgets", "64,8,100000", "--fastv-layer", 1)
    assert rc == 0
    return out, screen


def test_tables_are_finite_and_checks_pass(tiny_run):
    out, screen = tiny_run
    rows = pd.read_parquet(out / "validate.parquet")
    cfg = json.loads((out / "config.json").read_text())
    n = cfg["num_visual"]  # this image's N (merged tokens of the 1-frame video), part of the run's identity
    assert 64 < n < 1000 and cfg["clip_weights"] is None and cfg["model"] == "unipixel-tiny-random:0"
    # the baseline once, at all of this image's N; 100000 > N is skipped, not run
    assert set(zip(rows["method"], rows["budget"])) == {("none", n)} | {(m, k) for m in METHODS[1:]
                                                                        for k in (64, 8)}
    by = rows.set_index(["method", "budget"])
    text = int(by.loc[("none", n), "text_tokens"])
    assert by.loc[("none", n), "visual_tokens_input"] == n and by.loc[("none", n), "seq_len"] == text + n
    for k in (64, 8):  # DivPrune at the LLM input; FastV and DART receive all N and keep K inside
        assert by.loc[("divprune", k), "visual_tokens_input"] == k and by.loc[("divprune", k),
                                                                              "prune_layer"] == 0
        for m in ("fastv", "dart"):
            assert by.loc[(m, k), "visual_tokens_input"] == n and by.loc[(m, k), "visual_tokens_kept"] == k
    assert by.loc[("fastv", 8), "prune_layer"] == 1 and by.loc[("dart", 8), "prune_layer"] == 2
    assert (rows["text_tokens"] == text).all() and rows["text_ids_equal"].all()
    assert (rows["seg_positions"].str.split().str.len() == 1).all()  # one expression, one <|seg|>
    timed = ["prefill_ms", "paper_prefill_ms", "e2e_ms", "llm_activation_mb", "activation_mb", "peak_rss_gib"]
    assert all(math.isfinite(v) and v > 0 for v in rows[timed].to_numpy().ravel())
    checks = pd.read_csv(out / "checks.csv")
    assert len(checks) == 5 and checks["passed"].all()
    # Qwen2.5-VL's LLM runs SDPA: the check allows float32 rounding and says so
    assert f"methods keeping all {n} tokens in order equal none (masks equal, |logit difference| <= 0.0001)" \
        in set(checks["check"])
    ratios = pd.read_csv(out / "ratios.csv")
    flops = ratios.set_index(["method", "budget"])["flops_ideal_speedup"]
    assert flops.map(math.isfinite).all() and flops[("dart", 8)] == 1.0  # pruned after the last layer
    assert flops[("divprune", 8)] > flops[("divprune", 64)] > flops[("fastv", 64)] > 1
    assert ratios[["paper_def_tflops", "paper_def_activation_gib"]].gt(0).all().all()
    memory = pd.read_csv(out / "memory.csv")
    assert (memory["weights_mb"] > 0).all() and memory["weights_mb"].nunique() == 1
    report = (out / "report.md").read_text()
    assert f"N = {n} visual tokens (budgets above N skipped: 100000)" in report
    assert "The family's protocol: 1 expression(s) per prompt" in report and "`qwen`" in report
    assert "RANDOM WEIGHTS (unipixel-tiny-random:0)" in screen and "this model is `unipixel`" in screen


@pytest.mark.parametrize(("method", "why"),
                         [("clip-grid-only", "per-token scores"), ("one-axis-only", "1-D RoPE")])
def test_a_method_the_family_does_not_offer_is_refused_before_writing(coco128, tmp_path, method, why, capsys,
                                                                      unoffered_methods):
    out = tmp_path / "run"
    rc, _ = _validate(coco128, out, "unipixel-tiny-random:0", "--methods", f"fastv,{method}", "--budgets", 8)
    assert rc == 2 and why in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_all_n_equals_none_on_open_masks(coco128, tmp_path):
    """Seed 5's gate is open: DivPrune at K = N (this image's N, read from the first run; the second run
    resumes the folder and adds the row) keeps every token in order and gives ``none``'s mask logits
    exactly."""
    out = tmp_path / "run"
    assert _validate(coco128, out, "unipixel-tiny-random:5", "--methods", "divprune", "--budgets", 8)[0] == 0
    n = json.loads((out / "config.json").read_text())["num_visual"]
    assert _validate(coco128, out, "unipixel-tiny-random:5", "--methods", "divprune", "--budgets", n,
                     8)[0] == 0
    rows = pd.read_parquet(out / "validate.parquet").set_index(["method", "budget"])
    assert list(rows.index) == [("none", n), ("divprune", n), ("divprune", 8)]
    assert rows.loc[("none", n), "mask_pixels"] > 0  # real masks, not the closed gate's empty ones
    full = rows.loc[("divprune", n)]
    assert full["keeps_all_in_order"] and full["masks_equal_none"] and full["max_logit_diff_none"] == 0
    assert rows.loc[("divprune", 8), "max_logit_diff_none"] > 0
    assert pd.read_csv(out / "checks.csv")["passed"].all()


def test_default_methods_are_the_ones_the_family_runs(coco128, tmp_path, monkeypatch):
    """No ``--methods``: every registered method the family runs (the oracles included: the saliency oracle's
    gradient flows through SAM 2's decoder), none it refuses (asked of the pipeline the run loaded)."""
    import analysis.validate.compute as compute
    from litelvlm.methods import available_methods

    loaded, load = [], compute.load_pipeline
    monkeypatch.setattr(compute, "load_pipeline", lambda *a, **k: loaded.append(load(*a, **k)) or loaded[-1])
    out = tmp_path / "run"
    assert _validate(coco128, out, "unipixel-tiny-random:0", "--budgets", 8, "--fastv-layer", 1,
                     "--ipcv-llm-layer", 1)[0] == 0
    (pipe,) = loaded
    offered = {m for m in available_methods() if pipe.method_error(m) is None}
    rows = pd.read_parquet(out / "validate.parquet")
    assert set(rows["method"]) == offered and {"saliency", "llm-attention"} <= offered
    assert "litelvlm" in offered and {"visionzip", "vispruner", "prumerge", "prumerge+", "tome",
                                      "sparsevlm"} <= offered


def test_a_default_method_whose_default_layer_the_model_lacks_is_left_out_by_name(tiny_unipixel_pipe, caplog):
    """The tiny UniPixel has 2 decoder layers; IPCV + FastV / DART prune after the official layer 3 by
    default: with no ``--methods`` they are left out with a warning naming the option, not a refusal of the
    whole run; named, they are refused."""
    layers = int(tiny_unipixel_pipe.language_model.config.num_hidden_layers)
    assert layers < 3
    with caplog.at_level(logging.WARNING):
        methods = check_methods(ValidateArgs(), tiny_unipixel_pipe)
    assert "ipcv+fastv" not in methods and "ipcv+dart" not in methods
    assert {"none", "litelvlm", "fastv", "ipcv"} <= set(methods)
    said = caplog.text
    assert "ipcv+fastv left out of the default methods" in said and "--ipcv-llm-layer 3" in said, said
    with pytest.raises(LiteLVLMError, match=r"--ipcv-llm-layer 3: ipcv\+fastv's layer must be in 1\.\.2"):
        check_methods(ValidateArgs(methods=["ipcv+fastv"]), tiny_unipixel_pipe)
