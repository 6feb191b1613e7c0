"""``litelvlm positions``: the position switch per method and budget on the sample image, and its figure."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from litelvlm.cli import main


def test_positions_table_compares_keep_and_renumber(coco128, tmp_path, capsys):
    out = tmp_path / "pos"
    assert main(["positions", "--refer-dir", str(coco128), "--methods", "litelvlm,fastv,visionzip",
                 "--budgets", "16", "--out", str(out)]) == 0
    t = pd.read_csv(out / "positions.csv").set_index("method")
    assert list(t.index) == ["litelvlm", "fastv", "visionzip"] and (t["budget"] == 16).all()
    assert t.loc["fastv", "official_rule"] == "keep" and t.loc["litelvlm", "official_rule"] == "renumber"
    for m in ("litelvlm", "fastv"):
        assert 0 < t.loc[m, "seg_rel_diff_keep_renumber"] < 1  # the switch moves the [SEG] state, a little
        assert 0 < t.loc[m, "seg_cos_keep_renumber"] <= 1 + 1e-12
        assert 0 <= t.loc[m, "mask_iou_keep_renumber"] <= 1 and 0 <= t.loc[m, "mask_iou_keep_none"] <= 1
    assert not t.loc["visionzip", "keep_available"] and pd.isna(t.loc["visionzip", "mask_iou_keep_none"])
    assert 0 <= t.loc["visionzip", "mask_iou_renumber_none"] <= 1
    assert (t["weights"] == "random").all()
    cfg = json.loads((out / "config.json").read_text())
    # the plan is no part of the run's identity
    assert cfg["model"] == "tiny-random:0" and "methods" not in cfg
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    # a re-run with other methods reuses the finished rows and makes only the new ones
    before = {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert main(["positions", "--refer-dir", str(coco128), "--methods", "fastv,random", "--budgets", "16",
                 "--out", str(out)]) == 0
    again = pd.read_csv(out / "positions.csv").set_index("method")
    assert list(again.index) == ["fastv", "random"]
    assert again.loc["fastv"].drop("weights").equals(t.loc["fastv"].drop("weights"))
    after = {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert len(after) == 4 and all(after[p] == m for p, m in before.items())
    assert main(
        ["positions", "--refer-dir", str(coco128), "--methods", "fastv", "--budgets", "16", "--seed", "1",
                 "--out", str(out)]) == 2  # other options: refused, the folder left as it was
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")} == after


@pytest.mark.parametrize("bad", [["--methods", "fastvv"], ["--budgets", "0"]])
def test_positions_refuses_bad_options_before_writing(bad, coco128, tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["positions", "--refer-dir", str(coco128), *bad, "--out", str(out)]) == 2
    assert not out.exists() and "Traceback" not in capsys.readouterr().err


def test_position_switch_figure_draws_every_method():
    from analysis.positions.plots import plot_position_switch

    t = pd.DataFrame(
        {"method": ["fastv", "visionzip", "newcomer"], "budget": 8, "official_rule": ["keep", "renumber",
                      "renumber"], "keep_available": [True, False, True],
                      "seg_cos_keep_renumber": [0.99, None, 0.9],
                      "seg_rel_diff_keep_renumber": [0.01, None, 0.2],
                      "mask_iou_keep_renumber": [0.9, None, 0.5],
                      "mask_iou_keep_none": [0.8, None, 0.4], "mask_iou_renumber_none": [0.7, 0.6, 0.3]})
    fig, axes = plot_position_switch(t)
    labels = [x.get_text() for x in axes[0].get_yticklabels()]
    # the style order, then new
    assert labels == ["visionzip · renumber", "fastv · keep", "newcomer · renumber"]
    assert any("n/a" in x.get_text() for x in axes[0].texts)
    with pytest.raises(ValueError, match="no position-switch rows at budget 3"):
        plot_position_switch(t, budget=3)
