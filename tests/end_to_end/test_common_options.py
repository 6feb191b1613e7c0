"""Options every subcommand shares are checked once, before any work: --out and --device."""

from __future__ import annotations

import pytest
import torch

from litelvlm.cli import main

OUT_COMMANDS = ["reversal", "sink", "retention", "eval-grounding", "importance", "efficiency", "demo",
                "figures", "toy-data", "toy-train"]


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_out_that_is_a_file_is_refused(command, tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("keep me")
    argv = [command, "--out", str(f)]
    if command in ("eval-grounding", "importance"):
        argv += ["--refer-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and f.read_text() == "keep me"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command",
                         ["reversal", "sink", "eval-grounding", "importance", "efficiency", "demo"])
def test_cuda_without_a_gpu_is_refused(command, tmp_path, capsys):
    argv = [command, "--out", str(tmp_path / "out"), "--device", "cuda"]
    if command in ("eval-grounding", "importance"):
        argv += ["--refer-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_verbose_is_accepted_after_the_subcommand_too(capsys):
    import logging

    from litelvlm.cli import main

    for argv in (["-v", "select", "--list-methods"], ["select", "--list-methods", "-v"]):
        assert main(argv) == 0, argv
        assert logging.getLogger("litelvlm").level == logging.DEBUG, argv
    assert main(["select", "--list-methods"]) == 0
    assert logging.getLogger("litelvlm").level == logging.INFO
    assert "litelvlm" in capsys.readouterr().out
