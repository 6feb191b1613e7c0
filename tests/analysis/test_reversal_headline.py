"""``reversal`` and ``sink`` end with their headline: the answer in a few lines, with intervals and n, no
Python repr, and ``--quiet`` silences it (the random-weights banner stays)."""

from __future__ import annotations

import re

from litelvlm.cli import main

BANNER = "RANDOM WEIGHTS"



def test_reversal_headline_states_the_auroc_per_layer_with_interval_and_n(coco128, tiny_hf_clip_dir, tmp_path,
                                                                        capsys):
    argv = ["reversal", "--model", str(tiny_hf_clip_dir), "--refer-dir", str(coco128),
            "--limit-sentences", "40", "--n-boot", "50"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out, out
    assert "excluded: " in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith(BANNER)   # the headline's last line says the weights
    head = [line for line in lines if "AUROC of reversed CLIP similarity" in line]
    n = re.search(r"n = (\d+) sentences on (\d+) images", head[0])
    assert len(head) == 1 and n and int(n.group(2)) >= 3, out
    layers = lines[lines.index(head[0]) + 1]
    assert re.search(r"layer \d+ 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", layers), layers
    assert main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "AUROC" not in quiet and "layer " not in quiet
    assert quiet.strip().splitlines()[-1].startswith(BANNER)


def test_an_interval_over_fewer_than_3_images_is_not_printed(coco128, tiny_hf_clip_dir, tmp_path, capsys):
    assert main(["reversal", "--model", str(tiny_hf_clip_dir), "--refer-dir", str(coco128),
                 "--limit-sentences", "12", "--n-boot", "50", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "n = 6 sentences on 2 images" in out
    assert "(n = 2 images, no interval)" in out and "[" not in out.split("images:")[1], out
