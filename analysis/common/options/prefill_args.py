"""The options ``validate`` and ``efficiency`` share for their prefill (light: no torch): ``--prefill``,
``--capture``, ``--matmul-tflops`` (:mod:`litelvlm.llm.captured`, :mod:`litelvlm.cost.bound`)."""

from __future__ import annotations

from dataclasses import dataclass

from litelvlm.cli_args import arg
from litelvlm.errors import LiteLVLMError
from litelvlm.switches import CUDA_MODES as CUDA_ENCODERS  # the --encoders values that record CUDA graphs
from litelvlm.switches import (
    ENCODER_CHOICES,  # --encoders: auto (CUDA graphs on cuda, eager elsewhere) or a mode
)
from litelvlm.switches import PREFILLS as SWITCH_PREFILLS

#: ``--prefill``: auto (captured on CUDA, eager elsewhere) or one of :data:`litelvlm.switches.PREFILLS`
PREFILLS = ("auto", *SWITCH_PREFILLS)
#: ``--capture``: auto (fused on cuda, compile elsewhere) or one of ``litelvlm.llm.captured.CAPTURES``
CAPTURE_CHOICES = ("auto", "fused", "graph", "compile", "fused-eager", "compile-eager")
PREFILL_HELP = ("the LLM prefill: auto (the default: captured on cuda, eager on a CPU), eager (each decoder "
                "layer called from Python) or captured (the layers between pruning points as one CUDA graph "
                "of inductor-compiled layers on cuda, one torch.compile'd function elsewhere; equal to the "
                "eager path within the kernels' rounding; untimed warm-up calls capture each length; this "
                "project's option)")
CAPTURE_HELP = ("--prefill captured: fused (one inductor-compiled layer function, the segment of its calls "
                "as one CUDA graph; cuda), graph (CUDA graphs of the eager layers, cuda only) or "
                "torch.compile of the whole stack (compile); fused-eager / compile-eager: dynamo's eager "
                "backend, traced and replayed without generated code, a quick check; auto: fused on cuda, "
                "compile elsewhere")
ENCODERS_HELP = ("the image encoders (CLIP's and the family's vision towers, SAM's and SAM 2's image "
                 "encoders): auto (the default: graph on cuda, eager on a CPU), eager (each layer from "
                 "Python, the official path), graph (one CUDA graph per input shape, replaying the eager "
                 "kernels; cuda only), fused (that graph over the encoder's layers, each run through one "
                 "inductor-compiled layer function; cuda only; not yet measured end to end, so not auto), "
                 "compile (torch.compile), compile-eager / fused-eager (compile / fused with dynamo's eager "
                 "backend and no graph, a quick check); an encoder that cannot be captured runs eagerly, "
                 "named; this project's option")
TFLOPS_HELP = ("the device's matrix-product rate (TFLOP/s) for each prefill's arithmetic limit: auto "
               "(measured by a large GEMM on cuda; none on a CPU), measure, a number (e.g. "
               "benchmarks/gpu_check.sh's), or off")
STAGE_COSTS_HELP = ("count each stage's FLOPs and weight bytes of one more whole call per method and budget "
                    "without a rate (this project's measurement: stages.csv's flops and weight_bytes); a "
                    "rate (--matmul-tflops) counts them anyway and adds each stage's roofline; off by "
                    "default, so that a run's tables stay as they were")


@dataclass
class PrefillArgs:
    """``--prefill`` and ``--capture``, for a study that runs a family's LLM prefill (a mixin of its
    options)."""

    prefill: str = arg("auto", choices=list(PREFILLS), help=PREFILL_HELP)
    capture: str = arg("auto", choices=list(CAPTURE_CHOICES), help=CAPTURE_HELP)
    encoders: str = arg("auto", choices=list(ENCODER_CHOICES), help=ENCODERS_HELP)


def prefill_record(prefill: str, capture: str, encoders: str = "auto") -> dict:
    """config.json's record of the prefill: nothing for the eager prefill at ``--capture auto`` (earlier
    folders resume as they were), else both; ``--encoders`` where it is not auto."""
    rec = {} if prefill == "eager" and capture == "auto" else {"prefill": prefill, "capture": capture}
    return rec | ({"encoders": encoders} if encoders != "auto" else {})


def resolve_prefill(prefill: str, device: str, compile_layers: bool = False) -> str:
    """``eager`` or ``captured``: ``--prefill auto`` is captured on a CUDA device (eager with ``--compile``,
    which compiles the layers its own way) and eager elsewhere."""
    if prefill != "auto":
        return prefill
    return "captured" if str(device).startswith("cuda") and not compile_layers else "eager"


def check_prefill(prefill: str, compile_layers: bool, tflops: str, capture: str = "auto",
                  device: str = "cpu", encoders: str = "auto") -> None:
    """Refuse ``--compile`` with ``--prefill captured`` (two ways of compiling the same layers), ``--capture
    graph`` or ``--encoders graph`` / ``fused`` off CUDA, and a ``--matmul-tflops`` that is no positive
    number, auto, measure or off."""
    if encoders in CUDA_ENCODERS and not str(device).startswith("cuda"):
        raise LiteLVLMError(f"--encoders {encoders} records CUDA graphs: it needs --device cuda "
                            f"(got {device})")
    if prefill == "captured" and compile_layers:
        raise LiteLVLMError("--compile with --prefill captured: the captured prefill compiles the whole "
                            "stack; give one of them")
    if prefill == "captured" and capture == "graph" and not str(device).startswith("cuda"):
        raise LiteLVLMError(f"--capture graph records CUDA graphs: it needs --device cuda (got {device})")
    if prefill == "eager" and capture != "auto":
        raise LiteLVLMError(f"--capture {capture} applies to --prefill captured (the prefill here is eager)")
    if tflops not in ("auto", "measure", "off"):
        try:
            ok = float(tflops) > 0
        except ValueError:
            ok = False
        if not ok:
            raise LiteLVLMError(f"--matmul-tflops {tflops!r}: give a positive rate in TFLOP/s, auto, measure "
                                "or off")


__all__ = ["CAPTURE_CHOICES", "CAPTURE_HELP", "CUDA_ENCODERS", "ENCODERS_HELP", "ENCODER_CHOICES", "PREFILLS",
           "PREFILL_HELP", "STAGE_COSTS_HELP", "TFLOPS_HELP", "PrefillArgs", "check_prefill",
           "prefill_record", "resolve_prefill"]
