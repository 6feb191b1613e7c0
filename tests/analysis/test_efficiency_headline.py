"""``efficiency`` ends with its headline: LiteLVLM against ``none`` per budget (fewer FLOPs, faster prefill
with the range of its per-round ratios, lower activation memory), random weights said; ``--quiet`` silences
it."""

from __future__ import annotations

import re

from litelvlm.cli import main

ARGS = ["efficiency", "--arch", "tiny", "--methods", "none,litelvlm", "--budgets", "64,32", "--attn", "sdpa",
        "--repeats", "2", "--warmup", "0", "--no-figures"]


def test_efficiency_headline(tmp_path, capsys):
    assert main([*ARGS, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "}" not in out
    lines = out.strip().splitlines()
    assert lines[-3] == "efficiency: LiteLVLM against none on tiny (random weights, attn sdpa), ratios:"
    for line, k in zip(lines[-2:], (64, 32)):
        assert re.fullmatch(rf"efficiency:   K={k}: FLOPs \d+\.\d\dx fewer, prefill \d+\.\d\dx faster "
                            r"\[\d+\.\d\d, \d+\.\d\d\] \(min-max over 2 rounds\), "
                            r"activations \d+\.\d\dx lower", line), line
    assert main([*ARGS, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "LiteLVLM against none" not in capsys.readouterr().out
