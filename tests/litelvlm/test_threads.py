"""One place decides torch's thread count: 1 for tiny/toy models, torch's default otherwise, --threads
wins."""

from __future__ import annotations

import json

import pytest
import torch

from litelvlm.threads import default_threads, is_small_model, torch_threads


def test_small_models():
    assert is_small_model(None) and is_small_model("tiny-random:0") and is_small_model("/x/tiny336-random")
    assert not is_small_model("openai/clip-vit-large-patch14-336") and not is_small_model(
        "vit-l-14-336-random")
    assert default_threads("tiny-random") == 1


def test_context_restores_and_rejects_bad_counts():
    prev = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == prev
    with pytest.raises(Exception, match="--threads must be >= 1"):
        with torch_threads(0):
            pass


@pytest.mark.parametrize("argv,expected",
                         [(["--model", "tiny-random"], 1), (["--model", "tiny-random", "--threads", "2"], 2)])
def test_cli_applies_the_count_for_the_run(monkeypatch, argv, expected):
    import litelvlm.commands.select as sel
    from litelvlm.cli import main

    seen = []
    monkeypatch.setattr(sel, "run", lambda args: seen.append(torch.get_num_threads()) or 0)
    prev = torch.get_num_threads()
    assert main(["select", "--list-methods", *argv]) == 0
    assert seen == [expected] and torch.get_num_threads() == prev


def test_busy_warning_only_above_the_thread_count():
    from litelvlm.machine.busy import busy_warning

    assert busy_warning(threads=2, load=2.4) is None
    msg = busy_warning(threads=2, load=5.0)
    assert msg is not None and "1-minute load 5.0 above 2 thread(s)" in msg and "unreliable" in msg


def test_validate_reports_a_busy_machine(coco128, tmp_path, monkeypatch, capsys):
    import os

    from litelvlm.cli import main

    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    out = tmp_path / "v"
    assert main(["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm",
                 "--budgets", "32"]) == 0
    assert "validate: warning: the machine was busy while timing" in capsys.readouterr().err
    # as its figures
    assert "> **TIMES UNRELIABLE: the machine was busy while timing" in (out / "report.md").read_text()
    # recorded with the run, so that every figure drawn from it says so (analysis.common.presentation.caveats)
    assert json.loads((out / "config.json").read_text())["busy"].startswith("the machine was busy while "
                                                                            "timing")
