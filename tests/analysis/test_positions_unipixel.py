"""``litelvlm positions`` on the second model family, UniPixel: one expression per prompt, the methods the
family runs (LiteLVLM through the mapped CLIP), M-RoPE ids kept against a renumbered sequence; a method the
family cannot run refused before anything is written."""

from __future__ import annotations

import json

import pandas as pd

from litelvlm.cli import main

MODEL = "unipixel-tiny-random:0"


def test_positions_on_unipixel(coco128, tmp_path):
    out = tmp_path / "pos"
    assert main(
        ["positions", "--model", MODEL, "--refer-dir", str(coco128), "--methods", "litelvlm,fastv,divprune",
                 "--budgets", "16", "--fastv-layer", "1", "--out", str(out)]) == 0
    t = pd.read_csv(out / "positions.csv").set_index("method")
    assert list(t.index) == ["litelvlm", "fastv", "divprune"] and t["keep_available"].all()
    assert (t["official_rule"] == "keep").all()  # the family's rule under positions="official" (LiteLVLM too)
    for m in t.index:
        assert 0 < t.loc[m, "seg_cos_keep_renumber"] <= 1 + 1e-12 and t.loc[m,
                                                                            "seg_rel_diff_keep_renumber"] > 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["clip_weights"] is None and cfg["paired_clip"]["model"] == "tiny336-random:0"


def test_a_method_unipixel_cannot_run_is_refused_before_writing(coco128, tmp_path, capsys, unoffered_methods):
    out = tmp_path / "pos"
    assert main(
        ["positions", "--model", MODEL, "--refer-dir", str(coco128), "--methods", "fastv,one-axis-only",
                 "--budgets", "16", "--out", str(out)]) == 2
    assert "1-D RoPE" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
