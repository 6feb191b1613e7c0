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
OWN = re.compile(
    r"^(INFO|WARNING|ERROR|DEBUG) (litelvlm|analysis)[.:]|^[a-z-]+: |^\s*$|^[^:]{0,60}:\s+\d+%\|")


def foreign_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` (progress bars' carriage returns split too) that the command did not write."""
    return [line for line in re.split(r"[\r\n]+", stderr) if not OWN.search(line)]


def _python(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _command(argv: list[str]) -> str:
    """Python code running ``litelvlm ARGV`` as the command line does, then printing which back-ends
    loaded."""
    return (f"import sys\nfrom litelvlm.cli import main\nrc = main({argv!r})\n"
            "print('LOADED', [m for m in ('bitsandbytes', 'torchao') if sys.modules.get(m) is not None], rc)")


def test_foreign_lines_tells_a_commands_lines_from_a_librarys():
    own = ("INFO analysis.reversal.compute: layer 1\nWARNING litelvlm.models.quantize: nf4\n"
           "efficiency: warning: busy\nreversal:  42%|####      | 17/40 [00:00<00:00]\r\n")
    assert foreign_lines(own) == []
    lib = ("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'\n"
           "W1125 18:19:50.161000 7507 torch/utils/_pytree.py:630] <enum 'KernelPreference'> is an Enum\n"
           "/x/transformers/modeling_utils.py:1: UserWarning: something\n")
    assert len(foreign_lines(lib)) == 3


def test_a_plain_command_is_quiet_and_loads_no_quantization_backend(coco128):
    """``select`` on a tiny CLIP (transformers imported, which imports torchao whenever it is installed)."""
    image = next((coco128 / "images").glob("*.jpg"))
    run = _python(
        _command(["select", "--model", "tiny336-random", "--image", str(image), "--text", "the bowl",
                            "--budget", "16"]))
    assert run.returncode == 0, run.stderr
    assert "LOADED [] 0" in run.stdout  # neither bitsandbytes nor torchao
    assert foreign_lines(run.stderr) == []


@pytest.mark.slow  # heavy: the default suite keeps a lighter case of the same rule
def test_the_quantization_backend_loads_quietly_when_asked():
    """What ``--quantize`` runs: the back-ends hidden as the command line hides them, then the one asked for
    imported; bitsandbytes' notice about an optional hub kernel (on CPUs with avx512_bf16) is not printed."""
    pytest.importorskip("bitsandbytes", reason="the quantize extra is not installed")
    run = _python("import sys\nfrom litelvlm.cli import "
                  "defer_quantization_backends\ndefer_quantization_backends()\nimport "
                  "transformers.modeling_utils\nfrom litelvlm.models.quantize import _import\n"
                  "print('VERSION', _import('bitsandbytes').__version__, sys.modules.get('torchao'))")
    assert run.returncode == 0, run.stderr
    assert "VERSION" in run.stdout and run.stdout.strip().endswith("None")  # torchao still not loaded
    assert foreign_lines(run.stderr) == [] and "kernels-community" not in run.stderr


@pytest.mark.slow
def test_a_quantized_efficiency_run_is_quiet(tmp_path):
    """``efficiency --quantize int8`` end to end in a fresh process: only the command's own lines on
    stderr."""
    pytest.importorskip("bitsandbytes", reason="the quantize extra is not installed")
    run = _python(_command(["efficiency", "--arch", "tiny", "--methods", "none,litelvlm", "--budgets", "32",
                            "--warmup", "0", "--repeats", "1", "--attn", "sdpa", "--no-figures", "--quantize",
                            "int8", "--out", str(tmp_path / "q")]))
    assert run.returncode == 0, run.stderr
    assert "LOADED ['bitsandbytes'] 0" in run.stdout
    assert foreign_lines(run.stderr) == [] and "CUDA" not in run.stdout  # a CPU run shows no CUDA time


#: every command's smallest case (what stands for the tree a run reads, the REFER folder, is filled in by
#: :func:`_argv`), and whether it prints a table (or a list) that only ``--verbose`` shows in full
SMALLEST = {
    "select":
    (["--model", "tiny-random", "--image", "{image}", "--text", "the bowl", "--budget", "4"], False),
    "explore": (["--model", "tiny-random", "--image", "{image}", "--text", "the bowl", "--budgets", "16,4",
                 "--out", "{out}/page.html"], False),
    "toy-data": (["--scenes", "2", "--out", "{out}"], False),
    "toy-train": (["--steps", "2", "--batch-size", "2", "--train-scenes", "4", "--eval-scenes", "2",
                   "--final-eval-scenes", "2", "--eval-every", "1", "--out", "{out}"], False),
    "demo": (["--smoke", "--scenes", "2", "--out", "{out}"], False),
    "reversal":
    (["--model", "tiny-random", "--refer-dir", "{refer}", "--limit-sentences", "6", "--n-boot", "10",
                  "--out", "{out}"], False),
    "sink": (["--model", "tiny-random", "--refer-dir", "{refer}", "--limit-sentences", "6", "--n-boot", "10",
              "--out", "{out}"], True),
    "retention":
    (["--refer-dir", "{refer}", "--limit-images", "1", "--budgets", "64", "--compare-to", "{base}",
                   "--out", "{out}"], True),
    "eval-grounding": (["--refer-dir", "{refer}", "--limit-images", "1", "--methods", "none,litelvlm",
                        "--budgets", "64", "--n-boot", "10", "--out", "{out}"], True),
    "importance": (["--refer-dir", "{refer}", "--limit-images", "1", "--max-sentences", "1", "--signals",
                    "attention", "--no-per-head", "--n-boot", "10", "--out", "{out}"], True),
    "efficiency": (["--arch", "tiny", "--methods", "none,litelvlm", "--budgets", "64", "--flops-only",
                    "--no-figures", "--out", "{out}"], True),
    "validate": (["--refer-dir", "{refer}", "--methods", "litelvlm", "--budgets", "64", "--repeats", "1",
                  "--out", "{out}"], False),  # a line per budget; report.md holds the tables
    "positions":
    (["--refer-dir", "{refer}", "--methods", "litelvlm", "--budgets", "16", "--out", "{out}"], True),
    "eval-video": (["--anno-sets", "0", "--synthetic-videos", "1", "--synthetic-frames", "3", "--methods",
                    "litelvlm", "--budgets", "81", "--n-boot", "10", "--out", "{out}"], True),
    "figures": (["--smoke", "--figure-set", "efficiency", "--out", "{out}"], True),
    "tables": (["--results", "{base}", "--out", "{out}"], True),  # {base}: a tree of one efficiency run
    "plan":
    (["--data-dirs", "{refer}", "--models", "tiny-random", "--calibrate", "0", "--out", "{out}"], False),
}
#: the most lines a command prints without --verbose: its progress goes to stderr, its summary is short
SHORT = 25
#: the light default representative: efficiency printed about 200 lines of tables
DEFAULT = ("efficiency",)


def _argv(command: str, tmp_path: Path, coco128: Path) -> list[str]:
    args, _ = SMALLEST[command]
    fill = {"{image}": str(coco128 / "images" / "COCO_train2014_000000000009.jpg"), "{refer}": str(coco128),
            "{out}": str(tmp_path / "out"), "{base}": str(tmp_path / "base")}
    return [command, *(fill.get(a, a.replace("{out}", fill["{out}"])) for a in args)]


def test_every_command_has_its_smallest_case():
    from litelvlm.cli import all_commands

    assert set(SMALLEST) == set(all_commands())


@pytest.mark.parametrize("command", [pytest.param(c, marks=() if c in DEFAULT else pytest.mark.slow)
                                     for c in SMALLEST])
def test_a_command_prints_a_short_summary_and_its_tables_with_verbose(command, tmp_path, coco128, capsys):
    """Quiet by default: progress (stderr) and a short summary; a full table goes to its file, named on one
    line ending "(--verbose prints it)" (a figure set's files: "(--verbose lists them)"), and ``--verbose``
    prints it."""
    from litelvlm.cli import main

    argv = _argv(command, tmp_path, coco128)
    if "--compare-to" in argv:  # a finished run of the same command to compare with
        i = argv.index("--compare-to")
        assert main([*argv[:i], *argv[i + 2:-1], argv[i + 1]]) == 0
        capsys.readouterr()
    if command == "tables":  # a results tree to read
        efficiency = SMALLEST["efficiency"][0][:-1]   # its argv up to --out
        assert main(["efficiency", *efficiency, str(tmp_path / "base" / "efficiency")]) == 0
        capsys.readouterr()
    assert main(argv) == 0
    quiet = capsys.readouterr().out
    assert 0 < len(quiet.splitlines()) <= SHORT, quiet
    _, tables = SMALLEST[command]
    pointer = re.compile(r"\(--verbose (prints it|lists them)\)")
    assert bool(pointer.search(quiet)) == tables, quiet
    if not tables:
        return
    loud_argv = [*argv[:-1], argv[-1] + "-loud", "--verbose"]
    assert main(loud_argv) == 0
    loud = capsys.readouterr().out
    assert not pointer.search(loud) and len(loud.splitlines()) > len(quiet.splitlines()), loud
