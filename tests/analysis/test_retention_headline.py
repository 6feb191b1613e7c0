"""``retention`` ends with its headline: which part of each method chose its kept tokens at the smallest
budget, with n; with ``--compare-to`` the share of kept tokens both runs keep; ``--quiet`` silences it."""

from __future__ import annotations

import re

from litelvlm.cli import main


def test_retention_headline(coco128, tmp_path, capsys):
    args = ["retention", "--model", "tiny336-random", "--refer-dir", str(coco128), "--methods",
            "litelvlm,visionzip", "--budgets", "32,64"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("RANDOM WEIGHTS")
    assert re.match(r"retention: at K=32 \(the smallest budget\), .* mean over n = \d+ images:$", lines[-3])
    shares = re.findall(r"(litelvlm|visionzip) (\w+) (\d+)% \+ (\w+) (\d+)%", lines[-2])
    assert {m for m, *_ in shares} == {"litelvlm", "visionzip"}
    assert all(int(a) + int(b) in (99, 100, 101) for _, _, a, _, b in shares)   # shares of the kept tokens
    assert main([*args, "--out", str(tmp_path / "b"), "--compare-to", str(tmp_path / "a")]) == 0
    shared = capsys.readouterr().out.strip().splitlines()[-2]
    assert re.match(rf"retention: kept tokens shared with {re.escape(str(tmp_path / 'a'))} at K=32: "
                    r"litelvlm 1\.000 \(n = \d+ images\); visionzip 1\.000", shared), shared
    assert main([*args, "--out", str(tmp_path / "c"), "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "smallest budget" not in quiet and quiet.strip().splitlines()[-1].startswith("RANDOM WEIGHTS")
