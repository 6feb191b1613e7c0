"""A command prints only its own progress and results: no third-party warnings (bitsandbytes' optional-kernel
notice, torch's pytree notices about torchao's enums, transformers' logs), and the quantization back-ends load
only when ``--quantize`` asks for one. Each command runs in a fresh process, as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: what a command itself writes on stderr: its loggers, its own "<command>: ..." lines, progress bars
OWN = re.compile(r"^(INFO|WARNING|ERROR|DEBUG) (litelvlm|analysis)[.:]|^[a-z-]+: |^\s*$|^[^:]{0,60}:\s+\d+%\|")


def foreign_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` (progress bars' carriage returns split too) that the command did not write."""
    return [line for line in re.split(r"[\r\n]+", stderr) if not OWN.search(line)]


def _python(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _command(argv: list[str]) -> str:
    """Python code running ``litelvlm ARGV`` as the command line does, then printing which back-ends loaded."""
    return (f"import sys\nfrom litelvlm.cli import main\nrc = main({argv!r})\n"
            "print('LOADED', [m for m in ('bitsandbytes', 'torchao') if sys.modules.get(m) is not None], rc)")


def test_foreign_lines_tells_a_commands_lines_from_a_librarys():
    own = ("INFO analysis.reversal.compute: layer 1\nWARNING litelvlm.quantize: nf4\nefficiency: warning: busy\n"
           "reversal:  42%|####      | 17/40 [00:00<00:00]\r\n")
    assert foreign_lines(own) == []
    lib = ("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'\n"
           "W1125 18:19:50.161000 7507 torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an Enum\n"
           "/x/transformers/modeling_utils.py:1: UserWarning: something\n")
    assert len(foreign_lines(lib)) == 3


def test_a_plain_command_is_quiet_and_loads_no_quantization_backend(coco128):
    """``select`` on a tiny CLIP (transformers imported, which imports torchao whenever it is installed)."""
    image = next((coco128 / "images").glob("*.jpg"))
    run = _python(_command(["select", "--model", "tiny336-random", "--image", str(image), "--text", "the bowl",
                            "--budget", "16"]))
    assert run.returncode == 0, run.stderr
    assert "LOADED [] 0" in run.stdout  # neither bitsandbytes nor torchao
    assert foreign_lines(run.stderr) == []


def test_the_quantization_backend_loads_quietly_when_asked():
    """What ``--quantize`` runs: the back-ends hidden as the command line hides them, then the one asked for
    imported; bitsandbytes' notice about an optional hub kernel (on CPUs with avx512_bf16) is not printed."""
    pytest.importorskip("bitsandbytes", reason="the quantize extra is not installed")
    run = _python("import sys\nfrom litelvlm.cli import defer_quantization_backends\ndefer_quantization_backends()\n"
                  "import transformers.modeling_utils\nfrom litelvlm.quantize import _import\n"
                  "print('VERSION', _import('bitsandbytes').__version__, sys.modules.get('torchao'))")
    assert run.returncode == 0, run.stderr
    assert "VERSION" in run.stdout and run.stdout.strip().endswith("None")  # torchao still not loaded
    assert foreign_lines(run.stderr) == [] and "kernels-community" not in run.stderr


@pytest.mark.slow
def test_a_quantized_efficiency_run_is_quiet(tmp_path):
    """``efficiency --quantize int8`` end to end in a fresh process: only the command's own lines on stderr."""
    pytest.importorskip("bitsandbytes", reason="the quantize extra is not installed")
    run = _python(_command(["efficiency", "--arch", "tiny", "--methods", "none,litelvlm", "--budgets", "32",
                            "--warmup", "0", "--repeats", "1", "--attn", "sdpa", "--no-figures", "--quantize",
                            "int8", "--out", str(tmp_path / "q")]))
    assert run.returncode == 0, run.stderr
    assert "LOADED ['bitsandbytes'] 0" in run.stdout
    assert foreign_lines(run.stderr) == [] and "CUDA" not in run.stdout  # a CPU run shows no CUDA time
