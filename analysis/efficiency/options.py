"""``litelvlm efficiency``: its options (:class:`EfficiencyArgs`) and their checks.

Light (no torch): a bad option is refused at once; :func:`analysis.efficiency.command.run` imports the
measurement (:mod:`analysis.efficiency.compute`), which checks what needs the arch's family (its cost
description: the archs it offers, what it refuses), the methods and the device.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from analysis.common.options.defaults import GROUNDING_BUDGETS
from analysis.common.options.model_args import ATTN_CHOICES as ATTNS
from analysis.common.options.prefill_args import (
    CAPTURE_CHOICES,
    CAPTURE_HELP,
    ENCODER_CHOICES,
    ENCODERS_HELP,
    PREFILL_HELP,
    PREFILLS,
    STAGE_COSTS_HELP,
    TFLOPS_HELP,
    check_prefill,
    resolve_prefill,
)
from litelvlm.budget import Budget
from litelvlm.cli_args import MethodFlags, add_dataclass_arguments, arg, read_declared, split_list
from litelvlm.errors import LiteLVLMError
from litelvlm.models.model_spec import ModelSpec
from litelvlm.registry.families import cards
from litelvlm.shared_options import (
    DTYPES,
    budgets_option,
    device_option,
    dtype_option,
    methods_option,
    model_option,
    out_option,
    quantize_backend_option,
    quantize_option,
)
from litelvlm.switches import ARRANGEMENTS

#: the budgets of an image arch (a family with default budgets of its own, a video one, has those instead)
DEFAULT_BUDGETS = GROUNDING_BUDGETS


@dataclass
class EfficiencyArgs(MethodFlags):
    """The options of one ``efficiency`` run."""

    out: str = out_option("output folder: efficiency.csv, comparison.csv/.md, config.json, figures")
    arch: str | None = arg(None, help="an architecture of a family's cost description (docs/efficiency.md "
                                      "lists them: full-size presets, CPU-sized and test ones); default: the "
                                      "paper's")
    model: ModelSpec | None = model_option(None, help="a family's random model string (e.g. its documented "
                                           "tiny one): the arch of its preset (instead of --arch)")
    methods: list[str] = methods_option([], help="methods (space or comma separated; default: every "
                                        "registered method but the analysis oracles); 'none' is the baseline")
    budgets: list[Budget] = budgets_option(DEFAULT_BUDGETS, help="visual-token budgets K (a video prompt: "
                                           "per frame, default its family's)")
    flops_only: bool = arg(False, help="count FLOPs and meta-device activation memory only; no timing")
    device: str = device_option("device for timing and memory", choices=["cpu", "cuda"])
    dtype: str | None = dtype_option(None, choices=[*DTYPES, "auto"],
                                     help="weights/activations dtype (default: bfloat16 on cuda and for "
                                     "--flops-only, auto for CPU timing); auto: the faster of bfloat16 and "
                                     "float32 on this CPU, measured by a short matmul benchmark of the LLM's "
                                     "layer shape at start (recorded in config.json as dtype_auto; bfloat16 "
                                     "on cuda)")
    attn: list[str] = arg(["eager", "sdpa"], help="LLM attention implementations to run (eager: the official "
                                                  "stacks' explicit softmax; sdpa; flash: SDPA's "
                                                  "FlashAttention backend in the LLM, CUDA only)")
    text_tokens: int | None = arg(None,
                                  help="prompt text tokens around the visual ones (default: the arch's)")
    arrangements: list[str] = arg(list(ARRANGEMENTS),
                                  help="a video prompt only: how a frame's K kept CLIP tokens meet the "
                                       "square-only pooling (pool: 144 LLM tokens a frame; pool-min: "
                                       "min(sqrt K, 12)^2; direct: K)")
    warmup: int = arg(2, help="untimed warm-up calls before timing", minimum=0)
    repeats: int = arg(5, help="timed calls; the median is reported", minimum=1)
    e2e: str = arg("auto", choices=["auto", "chain", "parts"],
                   help="end-to-end time: 'chain' times the whole CLIP->selector->LLM->SAM chain per row "
                        "(also its CUDA time and memory); 'parts' sums the parts' medians (CPU-cheap); "
                        "auto: chain on cuda, parts on cpu")
    threads: int | None = arg(None, help="CPU threads for torch (default: torch's); 1 is steadiest on a busy "
                              "machine", minimum=1)
    figures: bool = arg(True, help="write the FLOPs / prefill / memory figures")
    prefill: str = arg("auto", choices=list(PREFILLS), help=PREFILL_HELP + " (docs/efficiency.md)")
    capture: str = arg("auto", choices=list(CAPTURE_CHOICES), help=CAPTURE_HELP)
    encoders: str = arg("auto", choices=list(ENCODER_CHOICES), help=ENCODERS_HELP)
    matmul_tflops: str = arg("auto", help=TFLOPS_HELP)
    stage_costs: bool = arg(False, help=STAGE_COSTS_HELP)
    quantize: str = quantize_option("time the model with its LLM decoder layers' weights quantized (int8: "
                                    "LLM.int8(); nf4: 4-bit NF4), as --quantize of the other commands "
                                    "(docs/quantization.md); not with --flops-only (quantization changes the "
                                    "weights' storage, not the FLOPs)")
    quantize_backend: str = quantize_backend_option("library of --quantize: bitsandbytes (int8, nf4) or "
                                                    "torchao (int8 weight-only)")

    def __post_init__(self) -> None:
        read_declared(self)   # a Python caller's budgets; the command line's are read already


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``efficiency`` options (one per :class:`EfficiencyArgs` field) to ``parser``."""
    add_dataclass_arguments(parser, EfficiencyArgs)


def check_args(a: EfficiencyArgs) -> None:
    """Raise a :class:`~litelvlm.errors.LiteLVLMError` naming the first invalid option (before torch)."""
    for at in split_list(a.attn):
        if at not in ATTNS:
            raise LiteLVLMError(f"--attn: unknown attention implementation {at!r}; choose among "
                                f"{', '.join(ATTNS)}")
        if at == "flash" and a.device != "cuda":
            raise LiteLVLMError(f"--attn flash: SDPA's FlashAttention backend runs on CUDA only (--device "
                                f"{a.device})")
    arrangements = split_list(a.arrangements)
    if bad := [x for x in arrangements if x not in ARRANGEMENTS] or (not arrangements and ["(none)"]):
        raise LiteLVLMError(f"--arrangements: unknown {', '.join(bad)}; choose among "
                            f"{', '.join(ARRANGEMENTS)}")
    if a.arch is not None and a.model is not None:
        raise LiteLVLMError("--arch and --model name the same thing: give one")
    known = [arch for c in cards() if c.cost for arch in c.cost_archs]
    if a.arch is not None and a.arch not in known:
        raise LiteLVLMError(f"unknown --arch {a.arch!r}; choose one of {', '.join(known)}")
    a.prefill = resolve_prefill(a.prefill, a.device)   # auto: captured on cuda, eager elsewhere
    check_prefill(a.prefill, False, a.matmul_tflops, a.capture, a.device, a.encoders)
    if a.prefill == "captured" and a.warmup < 1:
        raise LiteLVLMError("--prefill captured needs --warmup >= 1: the warm-up calls capture each length")
    if a.quantize != "none" and a.flops_only:
        raise LiteLVLMError("--quantize with --flops-only: quantization changes the weights' storage, not "
                            "the FLOPs count; time the quantized model (without --flops-only)")


#: this study's options (``analysis.common.runs.study.Study``)
ARGS = EfficiencyArgs
