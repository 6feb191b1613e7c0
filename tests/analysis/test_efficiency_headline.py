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
    # every ratio names the sequence it was measured at: none's prompt, and each run's
    full = re.fullmatch(r"efficiency: LiteLVLM against none on tiny \(random weights, attn sdpa\), ratios "
                        r"at none's sequence of (\d+) LLM tokens:", lines[-3])
    assert full, lines[-3]
    for line, k in zip(lines[-2:], (64, 32)):
        found = re.fullmatch(rf"efficiency:   K={k} \((\d+) tokens\): FLOPs \d+\.\d\dx fewer, prefill "
                             r"\d+\.\d\dx faster \[\d+\.\d\d, \d+\.\d\d\] \(min-max over 2 rounds\), "
                             r"activations \d+\.\d\dx lower", line)
        assert found and int(full.group(1)) - int(found.group(1)) == 576 - k, line
    assert main([*ARGS, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "LiteLVLM against none" not in capsys.readouterr().out
