"""``importance`` ends with its headline: for reversed CLIP ranks and each method's own score, the correlation
with attention at every layer (the [seg] rows, as the mission figure) and with saliency, with intervals over
images and n, FastV's own layer labelled as holding by construction; ``--quiet`` silences it."""

from __future__ import annotations

import re

import pytest

from litelvlm.cli import main

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")

INTERVAL = r"-?[01]\.\d{3} \[-?[01]\.\d{3}, -?[01]\.\d{3}\]"


def test_importance_headline_gives_every_layer_and_saliency(coco128, tmp_path, capsys):
    args = ["importance", "--refer-dir", str(coco128), "--model", "tiny-random:0", "--limit-images", "3",
            "--max-sentences", "1", "--signals", "attention,saliency", "--method-signals", "fastv",
            "--no-per-head", "--n-boot", "20"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    at = next(i for i, line in enumerate(lines) if "Spearman rho with the LLM's importance" in line)
    assert "attention from the [seg] rows at every layer" in lines[at]
    assert re.search(r"n = 3 sentences on 3 images:$", lines[at])
    layers = "; ".join(f"L{i} {INTERVAL}( \\*)?" for i in range(4))   # the tiny LLM's 4 layers
    for name in ("reversed CLIP similarity", "fastv's score"):
        att = next(ln for ln in lines if ln.startswith(f"importance:   {name} vs attention [seg]: "))
        assert re.fullmatch(f"importance:   {re.escape(name)} vs attention \\[seg\\]: {layers}", att), att
        saliency = f"importance:   {re.escape(name)} vs saliency: {INTERVAL}"
        assert any(re.fullmatch(saliency, ln) for ln in lines)
    fastv = next(ln for ln in lines if ln.startswith("importance:   fastv's score vs attention"))
    assert re.search(f"L1 {INTERVAL} \\*", fastv) and fastv.count("*") == 1   # FastV ranks by layer 1
    assert lines[-2] == ("importance:   * by construction: the method ranks by this layer's attention, not a "
                         "finding")
    # --quiet on the finished folder (a resume: nothing left to score, the same tables and headline)
    assert main([*args, "--out", str(tmp_path / "a"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "Spearman" not in quiet and quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
