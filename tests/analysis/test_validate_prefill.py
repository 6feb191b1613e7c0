"""``validate --prefill captured`` and ``--matmul-tflops`` end to end (the library's equivalence is
tests/litelvlm/llm/test_compiled_prefill.py; the limit's arithmetic tests/litelvlm/cost/test_bound.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from litelvlm.cli import main


def _validate(coco128, out, *extra: str) -> int:
    return main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm,fastv",
                 "--budgets", "64", "--threads", "1", *extra])


@pytest.mark.slow
def test_captured_validate_gives_the_eager_masks_and_names_overhead_bound_runs(coco128, tmp_path, capsys):
    """The eager run's tables carry no limit and its config no prefill (as before); the captured run (dynamo's
    eager backend) gives the eager run's unpruned mask logits exactly, records its prefill, and with a rate
    gives every row its arithmetic limit, report.md's section and the screen's overhead-bound line."""
    eager, captured = tmp_path / "eager", tmp_path / "captured"
    assert _validate(coco128, eager) == 0
    assert "prefill" not in json.loads((eager / "config.json").read_text())
    assert "over_limit" not in pd.read_csv(eager / "validate.csv")
    capsys.readouterr()
    assert _validate(coco128, captured, "--prefill", "captured", "--capture", "compile-eager",
                     "--matmul-tflops", "1e-6", "--compare-to", str(eager), "--repeats", "2") == 0
    screen = capsys.readouterr()
    config = json.loads((captured / "config.json").read_text())
    # the CPU's activation measurement runs eagerly: said once, naming every run (two rounds of each here)
    [line] = [ln for ln in screen.err.splitlines() if "ran eagerly" in ln]
    assert line.startswith("validate: --prefill captured: decoder-layer calls ran eagerly for a "
                           "tensor-tracking")
    assert line.endswith(": none@576, litelvlm@64, fastv@64")
    screen = screen.out
    assert config["prefill"] == "captured" and config["capture"] == "compile-eager"
    rows = pd.read_csv(captured / "validate.csv")
    assert (rows["logit_diff_vs_compare"][rows["method"] == "none"] == 0).all()
    assert rows["arithmetic_limit_ms"].gt(0).all() and rows["over_limit"].notna().all()
    assert "## Arithmetic limit" in (captured / "report.md").read_text()
    assert "overhead-bound" not in screen  # at 1e-6 TFLOP/s every prefill is far below its limit


@pytest.mark.slow
def test_captured_validate_of_videoglamm_names_eager_calls_once(tmp_path, capsys):
    """VideoGLaMM (its synthetic clip) under ``--prefill captured``: checks passed, and what ran eagerly (the
    CPU's activation measurement) said once, naming its runs."""
    out = tmp_path / "vg"
    assert main(["validate", "--model", "videoglamm-tiny-random:0", "--out", str(out), "--methods", "fastv",
                 "--budgets", "81", "--threads", "1", "--prefill", "captured", "--capture",
                 "compile-eager"]) == 0
    [line] = [ln for ln in capsys.readouterr().err.splitlines() if "ran eagerly" in ln]
    assert line.startswith("validate: --prefill captured:") and line.endswith(": none@576, fastv@81")
    assert pd.read_csv(out / "checks.csv")["passed"].all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_captured_validate_on_cuda(coco128, tmp_path):
    """On CUDA: CUDA graphs by default, every check passed, the unpruned masks equal to the eager run's, the
    card's rate measured and each row's ratio to its limit recorded."""
    eager, captured = tmp_path / "eager", tmp_path / "captured"
    assert _validate(coco128, eager, "--device", "cuda") == 0
    assert _validate(coco128, captured, "--device", "cuda", "--prefill", "captured", "--compare-to",
                     str(eager)) == 0
    rows = pd.read_csv(captured / "validate.csv")
    assert pd.read_csv(captured / "checks.csv")["passed"].all()
    assert (rows["mask_iou_vs_compare"][rows["method"] == "none"] == 1.0).all()
    assert rows["over_limit"].gt(0).all()
    assert json.loads((captured / "config.json").read_text())["prefill"] == "captured"
