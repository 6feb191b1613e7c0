"""Interrupted runs resume byte-identically, after Ctrl-C (SIGINT) and after kill -9 (SIGKILL), on every
resumable study: the command runs in a subprocess on the shared sample with tiny random models, is
interrupted once its first part is written (a part marker; for reversal and sink, whose parts are
the per-image vision features, a feature-cache entry; retention, which has no parts, once it holds
its folder's lock), then resumed; its tables must equal those of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from litelvlm.cli import main
from tests.end_to_end.test_grow_runs import TABLES
from tests.litelvlm.runs.test_run_folder import retention_data_option

pytestmark = pytest.mark.usefixtures("one_glamm_pipeline")


def command(study: str, data: Path, out: Path, cache: Path) -> list[str]:
    """A run long enough to be interrupted part-way."""
    return {
        "eval-grounding": ["eval-grounding", "--refer-dir", str(data), "--out", str(out), "--limit", "6",
                           "--chunk", "1", "--methods", "none,litelvlm", "--budgets", "16,8"],
        "importance": ["importance", "--refer-dir", str(data), "--out", str(out), "--limit", "3",
                       "--max-sentences", "1", "--n-boot", "20", "--signals", "attention,saliency",
                       "--no-per-head"],
        "reversal": ["reversal", "--model", "tiny-random", "--refer-dir", str(data), "--out", str(out),
                     "--split", "all", "--batch-size", "1", "--n-boot", "20", "--cache-dir", str(cache)],
        "sink":
        ["sink", "--model", "tiny-random", "--refer-dir", str(data), "--image-dir", str(data / "images"),
                 "--out", str(out), "--split", "all", "--batch-size", "1", "--n-boot", "20",
                 "--cache-dir", str(cache)],
        "retention": ["retention", retention_data_option(), str(data), "--out", str(out), "--limit", "6"],
    }[study]


def first_part(study: str, out: Path, cache: Path) -> bool:
    if study in ("eval-grounding", "importance"):
        return any((out / "parts").glob("part-*.json"))
    if study in ("reversal", "sink"):
        return any((cache / "vision-features").rglob("*.safetensors"))
    return (out / ".lock").exists()


def interrupt(args: list[str], ready, sig: int) -> int:
    """Run ``litelvlm ARGS`` in a subprocess, send ``sig`` once ``ready()``; returns its exit status."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # Ctrl-C's default action in the child, as a terminal gives it, whatever this process inherited (a shell
    # starts a background job with SIGINT ignored, and an ignored signal stays ignored across exec)
    p = subprocess.Popen([sys.executable, "-m", "litelvlm.cli", *args], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while p.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.005)
    if p.poll() is None:
        p.send_signal(sig)
    p.communicate(timeout=240)
    return p.returncode


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
@pytest.mark.parametrize("study", ["eval-grounding", "importance", "reversal", "sink", "retention"])
def test_interrupted_run_resumes_byte_identically(study, sig, coco128, tmp_path):
    full, out = tmp_path / "full", tmp_path / "out"
    assert main(command(study, coco128, full, tmp_path / "cache-full")) == 0
    args = command(study, coco128, out, tmp_path / "cache")
    rc = interrupt(args, lambda: first_part(study, out, tmp_path / "cache"), sig)
    assert rc == (130 if sig == signal.SIGINT else -signal.SIGKILL), rc
    assert not (out / TABLES[study][0]).exists()          # interrupted before its results
    assert main(args) == 0
    assert not list(out.rglob("*.litelvlm-tmp"))
    for f in TABLES[study]:
        if (full / f).exists() or (out / f).exists():
            assert (out / f).read_bytes() == (full / f).read_bytes(), f
