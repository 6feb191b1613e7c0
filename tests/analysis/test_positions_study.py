"""``litelvlm positions``: the position switch (keep, renumber, pad) per method and budget on the sample
image, and its figure; a folder written before the pad columns resumes with its keep / renumber rows
untouched."""

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
    # pad (PosPad): a CLIP-side method runs it, one inside the LLM and a merging one do not
    lite = t.loc["litelvlm"]
    assert lite["pad_available"] and lite["pad_markers"] > 0
    assert 0 < lite["seg_cos_pad_keep"] <= 1 + 1e-12 and lite["seg_rel_diff_pad_keep"] > 0
    assert 0 <= lite["mask_iou_pad_keep"] <= 1 and 0 <= lite["mask_iou_pad_none"] <= 1
    for m in ("fastv", "visionzip"):
        assert not t.loc[m, "pad_available"] and t.loc[m, ["pad_markers", "seg_cos_pad_keep"]].isna().all()
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
    assert len(after) == 8 and all(after[p] == m for p, m in before.items())  # a keep/renumber and a pad part
    assert main(
        ["positions", "--refer-dir", str(coco128), "--methods", "fastv", "--budgets", "16", "--seed", "1",
                 "--out", str(out)]) == 2  # other options: refused, the folder left as it was
    assert {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")} == after


def test_a_folder_without_pad_columns_resumes_and_makes_only_them(coco128, tmp_path):
    """A folder written before the pad runs (its pad parts removed here) resumes: its keep / renumber parts
    are not made again, its rows are the same, and the pad columns are added."""
    from analysis.positions.compute import pad_part_id
    from litelvlm.budget import Budget

    out = tmp_path / "pos"
    args = ["positions", "--refer-dir", str(coco128), "--methods", "random", "--budgets", "16", "--out",
            str(out)]
    assert main(args) == 0
    first = pd.read_csv(out / "positions.csv")
    pad = pad_part_id("random", Budget.parse("16"))
    for marker in (out / "parts").glob("*.json"):
        if json.loads(marker.read_text()).get("ids") == [pad]:
            marker.unlink()
            marker.with_suffix(".parquet").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (out / "parts").glob("*.parquet")}
    assert len(kept) == 1
    assert main(args) == 0
    again = pd.read_csv(out / "positions.csv")
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert len(list((out / "parts").glob("*.parquet"))) == 2
    pd.testing.assert_frame_equal(again, first)  # the pad run is deterministic: the same columns again


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
    # a table written before the pad runs draws them as not run
    fig, axes = plot_position_switch(t)
    labels = [x.get_text() for x in axes[0].get_yticklabels()]
    # the registry's order, then new
    assert labels == ["fastv · keep", "visionzip · renumber", "newcomer · renumber"]
    assert [x.get_text() for x in axes[0].texts] == ["pad n/a", "n/a: no original positions", "pad n/a"]
    with pytest.raises(ValueError, match="no position-switch rows at budget 3"):
        plot_position_switch(t, budget=3)
    # with the pad columns: three bars a method in the mask panel (keep, renumber, pad), two in the [SEG] one
    t = t.assign(pad_available=[False, False, True], pad_markers=[None, None, 5.0],
                 seg_cos_pad_keep=[None, None, 0.97], seg_rel_diff_pad_keep=[None, None, 0.05],
                 mask_iou_pad_keep=[None, None, 0.7], mask_iou_pad_none=[None, None, 0.35])
    fig, axes = plot_position_switch(t)
    assert [x.get_text() for x in axes[0].texts] == ["pad n/a", "n/a: no original positions"]
    widths = [b.get_width() for b in axes[1].patches if b.get_height() > 0 and b.get_width() > 0]
    assert 0.35 in widths and 0.4 in widths and 0.3 in widths  # newcomer's pad, keep and renumber IoUs
    assert [x.get_text() for x in fig.legends[0].get_texts()] == ["keep", "renumber", "pad"]
