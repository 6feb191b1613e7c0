"""`litelvlm eval-grounding` end to end on COCO-128 (tiny random GLaMM, CPU)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.methods import available_methods
from tests.fixtures.cli import run_grounding as _run

#: Every registered method that is implemented (a placeholder without a function cannot run).
METHODS = available_methods()


pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def _check(out, methods, budgets, n_sentences):
    rows = pd.read_parquet(out / "grounding.parquet")
    summary = pd.read_csv(out / "summary.csv")
    pairs = {(m, 576) for m in methods if m == "none"} | {(m, b) for m in methods if m != "none"
                                                          for b in budgets}
    assert set(zip(summary["method"], summary["budget"])) == pairs
    assert (summary["n"] == n_sentences).all()
    assert len(rows) == n_sentences * len(pairs)
    assert rows["iou"].between(0, 1).all() and (rows["intersection"] <= rows["union"]).all()
    for (m, b), g in rows.groupby(["method", "budget"]):
        s = summary[(summary["method"] == m) & (summary["budget"] == b)].iloc[0]
        assert s["ciou"] == pytest.approx(g["intersection"].sum() / g["union"].sum())
        assert s["giou"] == pytest.approx(g["iou"].mean())
    return rows, summary


@pytest.mark.parametrize("budgets", [pytest.param([576, 192, 128, 64, 32], marks=pytest.mark.slow), [64, 8]])
def test_every_method_official(coco128, tmp_path, budgets):
    """Official protocol: one image, at most 3 sampled sentences in one prompt, every method and budget."""
    assert _run(coco128, tmp_path, "--protocol", "official", "--limit", 1, "--methods", ",".join(METHODS),
                "--budgets", ",".join(map(str, budgets))) == 0
    rows, _ = _check(tmp_path, METHODS, budgets, 3)
    assert set(rows["turn"]) == {0, 1, 2} and (rows["protocol"] == "official").all()
    # pruning at the LLM input shortens the sequence by N - K; FastV prunes inside the LLM
    r = rows[rows["method"] == "random"].groupby("budget")["seq_len"].first()
    assert r[max(budgets)] - r[min(budgets)] == max(budgets) - min(budgets)
    assert (rows.loc[rows["method"] == "fastv", "prune_layer"] == 2).all()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["protocol"] == "official" and cfg["images"] == 1
    assert "image_resize" not in cfg   # a family whose processor resizes nothing: its config.json as before


def test_every_method_per_expression(coco128, tmp_path):
    budgets = [16]
    assert _run(coco128, tmp_path, "--protocol", "per-expression", "--image-ids", 34, "--methods",
                ",".join(METHODS), "--budgets", ",".join(map(str, budgets))) == 0
    rows, _ = _check(tmp_path, METHODS, budgets, 2)
    assert (rows["turn"] == 0).all() and set(rows["image_id"]) == {34}


@pytest.mark.odd_case("arguments", "--image-resize pil for a family whose processor resizes nothing (GLaMM)",
                      "eval-grounding", "exit 2, one line naming the option and the model, before the model "
                      "loads")
def test_image_resize_is_sa2va_only(coco128, tmp_path, capsys):
    from tests.fixtures.cli import one_error_line, run_grounding

    line = one_error_line(run_grounding(coco128, tmp_path / "out", "--image-resize", "pil"),
                          capsys.readouterr().err, "eval-grounding")
    assert "--image-resize pil" in line and "tiny-random:0" in line and "offered by: sa2va" in line
    assert not (tmp_path / "out").exists()
