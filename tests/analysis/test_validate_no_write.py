"""``validate --no-write``: a random preset built in memory, no checkpoint folder written, the same results as
the written folder's (the library's round trip: tests/litelvlm/lvlm/test_random_weights.py); refused where it
means nothing or its family builds nothing in memory."""

from __future__ import annotations

import pandas as pd
import pytest

from litelvlm.cli import main


@pytest.mark.odd_case("bad option", "--no-write with a checkpoint folder, or a random preset whose family "
                      "builds none in memory", "validate", "one line naming --no-write (exit 2), before "
                      "torch loads, nothing written")
def test_no_write_is_refused_where_it_means_nothing_before_torch(coco128, tmp_path):
    from tests.analysis.test_efficiency import parse_refusals

    out = tmp_path / "out"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["Sa2VAChatModelQwen"]}')
    (folder / "model.safetensors").write_bytes(b"")  # a folder with weights: the resolution lets it through
    val = ["validate", "--refer-dir", str(coco128), "--out", str(out), "--no-write", "--model"]
    got = parse_refusals([[*val, str(folder)], [*val, "unipixel-tiny-random:0"]])
    assert all(g["rc"] == 2 and not g["torch"] and "error: --no-write: " in g["err"] for g in got), got
    assert "no random preset" in got[0]["err"] and "unipixel family" in got[1]["err"]
    assert all(len(g["err"].strip().splitlines()) == 1 for g in got) and not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(("model", "folder"), [("sa2va-tiny-random:0", "sa2va-tiny-seed0"),
                                               ("tiny-random:0", "glamm-tiny-seed0")])
def test_no_write_gives_the_written_folders_results_and_writes_no_checkpoint(coco128, tmp_path, monkeypatch,
                                                                             model,
                                                                           folder):
    """The tiny Sa2VA and GLaMM with and without ``--no-write``: the same rows (tokens, [SEG] positions,
    masks), the unpruned logits within float32 rounding (``--compare-to``; the tensors are equal, but on the
    CPU Sa2VA's SAM 2 mask decoder takes another kernel path on the written file's unaligned tensors), and
    only the run without it leaves the model's folder in the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LITELVLM_CACHE", str(cache))
    args = ["validate", "--model", model, "--refer-dir", str(coco128), "--methods", "fastv", "--budgets",
            "64", "--threads", "1"]
    assert main([*args, "--no-write", "--out", str(tmp_path / "mem")]) == 0
    assert not (cache / "random-models" / folder).exists()
    assert main([*args, "--out", str(tmp_path / "disk"), "--compare-to", str(tmp_path / "mem")]) == 0
    assert (cache / "random-models" / folder / ".complete").exists()
    disk, mem = (pd.read_csv(tmp_path / run / "validate.csv") for run in ("disk", "mem"))
    none = disk["method"] == "none"  # --compare-to compares each row with the other run's unpruned masks
    assert (disk["logit_diff_vs_compare"][none] < 1e-5).all() and (disk["mask_iou_vs_compare"][none]
                                                                   == 1).all()
    same = ["method", "budget", "seq_len", "seg_positions", "mask_pixels", "masks_equal_none"]
    pd.testing.assert_frame_equal(disk[same], mem[same])
    assert ((disk["max_logit_diff_none"] - mem["max_logit_diff_none"]).abs() < 1e-5).all()
