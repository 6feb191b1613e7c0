"""``importance`` ends with its headline: for reversed CLIP ranks and each method's own score, the strongest
correlation with attention and with saliency, with intervals over images and n; ``--quiet`` silences it."""

from __future__ import annotations

import re

import pytest

from litelvlm.cli import main

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

INTERVAL = r"-?[01]\.\d{3} \[-?[01]\.\d{3}, -?[01]\.\d{3}\]"


def test_importance_headline_names_the_strongest_correlations(coco128, tmp_path, capsys):
    args = ["importance", "--refer-dir", str(coco128), "--model", "tiny-random:0", "--limit-images", "3",
            "--max-sentences", "1", "--signals", "attention,saliency", "--method-signals", "fastv",
            "--no-per-head", "--n-boot", "20"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    at = next(i for i, line in enumerate(lines) if "strongest Spearman rho per signal pair" in line)
    assert re.search(r"n = 3 sentences on 3 images:$", lines[at])
    clip, fastv = lines[at + 1:at + 3]
    for line, name in ((clip, "reversed CLIP similarity"), (fastv, "fastv's score")):
        assert line.startswith(f"importance:   {name} vs attention (layer "), line
        assert re.search(f"query\\) {INTERVAL}; saliency {INTERVAL}$", line), line
    assert main([*args, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "Spearman" not in quiet and quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
