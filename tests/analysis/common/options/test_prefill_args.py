"""``--prefill auto`` (captured on CUDA, eager on a CPU) is the default of every command that times or runs a
family's LLM prefill: ``validate``, ``efficiency``, ``eval-grounding``, ``eval-video`` and the throughput
benchmark, after the gpu-marked tests passed on an H100
(``results/gpu_check/NVIDIA-H100-80GB-HBM3/2026-11-26-fused/gpu-tests.log``); ``--prefill eager`` stays."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path

import pytest

from analysis.common.options.prefill_args import (
    PREFILLS,
    PrefillArgs,
    check_prefill,
    prefill_record,
    resolve_prefill,
)
from litelvlm.errors import LiteLVLMError

ROOT = Path(__file__).resolve().parents[4]


def _default(cls, field: str) -> str:
    return next(f.default for f in dataclasses.fields(cls) if f.name == field)


@pytest.mark.parametrize("module, cls", [("analysis.validate.options", "ValidateArgs"),
                                         ("analysis.efficiency.options", "EfficiencyArgs"),
                                         ("analysis.grounding.options", "GroundingArgs"),
                                         ("analysis.video.options", "VideoArgs")])
def test_auto_is_every_study_s_default(module, cls):
    args = getattr(importlib.import_module(module), cls)
    assert _default(args, "prefill") == "auto" and _default(args, "capture") == "auto"


def test_auto_is_the_throughput_benchmark_s_default(monkeypatch, capsys):
    """The script's ``--help``, through its own ``main`` in this process (the path it adds is undone)."""
    monkeypatch.setattr(sys, "path", [str(ROOT / "benchmarks"), *sys.path])
    with pytest.raises(SystemExit) as stop:
        importlib.import_module("bench_throughput").main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "--prefill {auto,eager,captured}" in text and "captured on cuda, eager on a CPU" in " ".join(
        text.split())


def test_auto_resolves_to_captured_on_cuda_and_eager_elsewhere():
    assert PREFILLS[0] == "auto"
    assert resolve_prefill("auto", "cuda") == "captured" and resolve_prefill("auto", "cuda:1") == "captured"
    assert resolve_prefill("auto", "cpu") == "eager"
    assert resolve_prefill("auto", "cuda", compile_layers=True) == "eager"  # --compile compiles its own way
    assert resolve_prefill("eager", "cuda") == "eager" and resolve_prefill("captured", "cpu") == "captured"
    assert PrefillArgs().prefill == "auto"


def test_the_record_is_empty_for_the_eager_default_so_earlier_folders_resume():
    assert prefill_record("eager", "auto") == {}
    assert prefill_record("captured", "auto") == {"prefill": "captured", "capture": "auto"}


@pytest.mark.odd_case("bad option", "--capture with the eager prefill", "validate/efficiency/eval-*",
                      "one line: --capture applies to --prefill captured (exit 2)")
def test_a_capture_without_the_captured_prefill_is_refused():
    with pytest.raises(LiteLVLMError, match="--capture fused applies to --prefill captured"):
        check_prefill("eager", False, "off", "fused", "cpu")
    check_prefill("captured", False, "off", "fused-eager", "cpu")
