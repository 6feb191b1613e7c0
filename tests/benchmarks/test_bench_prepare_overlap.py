"""benchmarks/bench_prepare_overlap.py: its dry run grounds the same images with their pixels made in turn and
ahead on the loader's threads, writes both modes' images per second and their ratio, and finds the same
masks; a missing REFER folder is one line, exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_prepare_overlap import MODES, main  # noqa: E402


def test_the_dry_run_times_both_modes_on_the_same_masks(coco128, tmp_path, capsys, one_glamm_pipeline):
    assert main(["--dry-run", "--threads", "1", "--refer-dir", str(coco128), "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "overlap.csv")
    assert list(table["mode"]) == list(MODES) and (table["images"] == 2).all()
    assert (table["images_per_s"] > 0).all() and (table["masks_differing"] == 0).all()
    out = capsys.readouterr().out
    assert "overlapped over serial: " in out and "(the same masks)" in out and "CPU: " in out


def test_a_missing_refer_folder_is_refused(tmp_path, capsys):
    assert main(["--dry-run", "--refer-dir", str(tmp_path / "absent")]) == 2
    assert "--refer-dir" in capsys.readouterr().err
