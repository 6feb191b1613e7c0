"""``sink`` ends with their headline: the answer in a few lines, with intervals and n, no
Python repr, and ``--quiet`` silences it (the random-weights banner stays)."""

from __future__ import annotations

import re

from litelvlm.cli import main

BANNER = "RANDOM WEIGHTS"


def test_sink_headline_states_the_sos_share_and_the_ablation(coco128, tiny_hf_clip_dir, tmp_path, capsys):
    argv = ["sink", "--model", str(tiny_hf_clip_dir), "--refer-dir", str(coco128), "--limit-sentences", "40",
            "--n-boot", "50"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out, out
    share = [line for line in out.splitlines() if "[EOS]->[SOS] share" in line]
    assert len(share) == 1 and "n = 40 sentences" in share[0]
    assert re.search(r"layer \d+ 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\] \(uniform 0\.\d{3}\)", share[0]), share
    ablation = [line for line in out.splitlines() if line.startswith("sink: ablation, AUROC")]
    n = re.search(r"n = (\d+) sentences on (\d+) images", ablation[0])
    assert len(ablation) == 1 and n and int(n.group(2)) >= 3, ablation
    assert re.search(r"original 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]; "
                     r".*\([+-]0\.\d{3}, paired Wilcoxon p = ", out), out
    assert out.strip().splitlines()[-1].startswith(BANNER)
    assert main([*argv, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "[SOS] share" not in quiet and "ablation, AUROC" not in quiet
    assert quiet.strip().splitlines()[-1].startswith(BANNER)
