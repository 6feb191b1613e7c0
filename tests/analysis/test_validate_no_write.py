"""``validate --no-write``: a random preset built in memory, no checkpoint folder written, the same results as the
written folder's (the library's round trip: tests/litelvlm/lvlm/test_random_weights.py); refused where it means nothing
or its family builds nothing in memory."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main


@pytest.mark.odd_case("bad option", "--no-write with a checkpoint folder, or a random preset whose family builds "
                      "none in memory", "validate", "one line naming --no-write (exit 2), before torch loads, "
                      "nothing written")
def test_no_write_is_refused_where_it_means_nothing_before_torch(coco128, tmp_path):
    from tests.analysis.test_efficiency import parse_refusals

    out = tmp_path / "out"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["Sa2VAChatModelQwen"]}')
    val = ["validate", "--refer-dir", str(coco128), "--out", str(out), "--no-write", "--model"]
    got = parse_refusals([[*val, str(folder)], [*val, "unipixel-tiny-random:0"]])
    assert all(g["rc"] == 2 and not g["torch"] and "error: --no-write: " in g["err"] for g in got), got
    assert "no random preset" in got[0]["err"] and "unipixel family" in got[1]["err"]
    assert all(len(g["err"].strip().splitlines()) == 1 for g in got) and not out.exists()


@pytest.mark.slow
def test_no_write_gives_the_written_folders_results_and_writes_no_checkpoint(coco128, tmp_path, monkeypatch):
    """The tiny Sa2VA with and without ``--no-write``: the same masks, the logits within float32 rounding
    (``--compare-to``; the tensors are equal, but the CPU kernels of SAM 2's mask decoder take another path on the
    written file's unaligned tensors), and only the run without it leaves a random-model folder in the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LITELVLM_CACHE", str(cache))
    args = ["validate", "--model", "sa2va-tiny-random:0", "--refer-dir", str(coco128), "--methods", "fastv",
            "--budgets", "64", "--threads", "1"]
    assert main([*args, "--no-write", "--out", str(tmp_path / "mem")]) == 0
    assert not [p for p in (cache / "random-models").glob("sa2va-*")]
    assert main([*args, "--out", str(tmp_path / "disk"), "--compare-to", str(tmp_path / "mem")]) == 0
    assert [p.name for p in (cache / "random-models").glob("sa2va-*")] == ["sa2va-tiny-seed0"]
    rows = pd.read_csv(tmp_path / "disk" / "validate.csv")
    assert (rows["logit_diff_vs_compare"] < 1e-5).all() and (rows["mask_iou_vs_compare"] == 1).all()
