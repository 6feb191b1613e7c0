"""The leaderboard's stage columns end to end (``eval-grounding --stage-costs``, this project's measurement):
every method's ms, FLOPs and weight bytes by stage in summary.csv, with pruning's savings where they happen
(the prefill of a method pruning before the LLM; the vision stage of IPCV pruning inside UniPixel's Qwen2.5-VL
tower; the tiny GLaMM tower runs one block, before any pruning), and their cells and caption in
``litelvlm tables``."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from analysis.common.grounding import grounding_scoring as scoring
from analysis.common.stats.leaderboard import BOARD_STAGES, STAGE_COLUMNS
from litelvlm.cli import main
from tests.fixtures.cli import run_grounding
from tests.fixtures.spies import forwards_seen


@pytest.fixture(scope="module")
def glamm_run(session_folders, shared_data):
    """(the run folder, its summary.csv indexed by method): tiny GLaMM, one image, --stage-costs; run once per
    test session (the tests only read it)."""
    def make(base: Path) -> None:
        assert run_grounding(shared_data / "coco128_refer", base / "run", "--methods",
                             "none,litelvlm,flowcut", "--budgets", 64, "--limit-images", 1, "--n-boot", 10,
                             "--stage-costs") == 0

    out = session_folders("stages-glamm-run", make) / "run"
    return out, pd.read_csv(out / "summary.csv").set_index("method")


def test_every_method_has_its_stage_columns(glamm_run):
    _, s = glamm_run
    assert [c for c in s.columns if c.startswith("stage_")] == STAGE_COLUMNS
    assert s[STAGE_COLUMNS].notna().all().all() and (s["stage_total_ms"] > 0).all()
    assert (s["stage_prefill_flops"] > 0).all() and (s["stage_mask_weight_bytes"] > 0).all()
    # pruning before the LLM: a shorter prefill; the selection is LiteLVLM's own (none selects nothing)
    assert s.loc["litelvlm", "stage_prefill_flops"] < s.loc["none", "stage_prefill_flops"]
    assert s.loc["litelvlm", "stage_selection_flops"] > 0 == s.loc["none", "stage_selection_flops"]
    # FlowCut's own run of the one-block tiny tower in place of the full one: no block saved, scoring added
    assert s.loc["flowcut", "stage_vision_flops"] >= s.loc["none", "stage_vision_flops"]
    assert s.loc["flowcut", "stage_prefill_flops"] < s.loc["none", "stage_prefill_flops"]
    assert "prune_ms" not in s   # --time-pruning's paper-style column: not asked for


def test_tables_show_the_stage_columns_with_their_caption(glamm_run, tmp_path, capsys):
    out, _ = glamm_run
    capsys.readouterr()
    assert main(["tables", "--results", str(out), "--out", str(tmp_path / "t"), "-v"]) == 0
    printed = capsys.readouterr().out
    header = next(ln for ln in printed.splitlines() if ln.startswith("| Method"))
    for column in ("Vision GFLOPs", "Selection GFLOPs", "LLM GFLOPs", "Mask GFLOPs", "Weights MB v/s/p/m",
                   "ms v/s/p/m (call)"):
        assert f"| {column} |" in header, header
    cells = [c.strip() for c in next(ln for ln in printed.splitlines()
                                     if ln.startswith("| litelvlm |")).strip("|").split("|")]
    ms = cells[[c.strip() for c in header.strip("|").split("|")].index("ms v/s/p/m (call)")]
    assert len(ms.split(" ")[0].split("/")) == 4 and ms.endswith(")")
    assert "this project's measurement" in printed and "stay beside" in printed


def test_a_method_pruning_inside_the_tower_saves_vision_flops(coco128, tmp_path, monkeypatch):
    """IPCV pruning after block 2 of UniPixel's 4-block tiny tower: its vision stage, charged its own run in
    place of the preparation's full one, is smaller than ``none``'s; its LLM sees every token again. Timed,
    the preparation's run is the image's forwards made again (as the call made them), not an eager full run
    of the tower."""
    seen = forwards_seen(monkeypatch, scoring, "call_costs")
    out = tmp_path / "run"
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--model",
                 "unipixel-tiny-random:0", "--methods", "none,ipcv", "--budgets", "8", "--image-ids", "34",
                 "--ipcv-layer", "2", "--ipcv-as-layers", "1", "--n-boot", "10", "--stage-costs"]) == 0
    s = pd.read_csv(out / "summary.csv").set_index("method")
    assert s.loc["ipcv", "stage_vision_flops"] < s.loc["none", "stage_vision_flops"]
    assert s.loc["ipcv", "stage_prefill_flops"] == s.loc["none", "stage_prefill_flops"]
    assert all(math.isfinite(s.loc["ipcv", f"stage_{st}_ms"]) for st in BOARD_STAGES)
    assert seen and set(seen) == {"UniPixelInput"}
