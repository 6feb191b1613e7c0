"""The options ``validate`` and ``efficiency`` share for their prefill (light: no torch): ``--prefill``,
``--capture``, ``--matmul-tflops`` (:mod:`litelvlm.llm.captured`, :mod:`litelvlm.cost.bound`)."""

from __future__ import annotations

from litelvlm.errors import LiteLVLMError

#: ``--prefill`` (``litelvlm.llm.captured.PREFILLS``, named here: this module imports no torch)
PREFILLS = ("eager", "captured")
#: ``--capture``: auto (graph on cuda, compile elsewhere) or one of ``litelvlm.llm.captured.CAPTURES``
CAPTURE_CHOICES = ("auto", "graph", "compile", "compile-eager")
PREFILL_HELP = ("the LLM prefill: eager (each decoder layer called from Python; the default until the GPU "
                "check has passed) or captured (the layers between pruning points as one CUDA graph on cuda, "
                "one torch.compile'd function elsewhere; equal to the eager path; untimed warm-up calls "
                "capture each length; this project's option)")
CAPTURE_HELP = ("--prefill captured: CUDA graphs of the eager layers (graph, cuda only) or torch.compile of "
                "the whole stack (compile; compile-eager: dynamo's eager backend, traced and replayed "
                "without generated code, a quick check); auto: graph on cuda, compile elsewhere")
TFLOPS_HELP = ("the device's matrix-product rate (TFLOP/s) for each prefill's arithmetic limit: auto "
               "(measured by a large GEMM on cuda; none on a CPU), measure, a number (e.g. "
               "benchmarks/gpu_check.sh's), or off")


def check_prefill(prefill: str, compile_layers: bool, tflops: str, capture: str = "auto",
                  device: str = "cpu") -> None:
    """Refuse ``--compile`` with ``--prefill captured`` (two ways of compiling the same layers), ``--capture
    graph`` off CUDA, and a ``--matmul-tflops`` that is no positive number, auto, measure or off."""
    if prefill == "captured" and compile_layers:
        raise LiteLVLMError("--compile with --prefill captured: the captured prefill compiles the whole "
                            "stack; give one of them")
    if prefill == "captured" and capture == "graph" and not str(device).startswith("cuda"):
        raise LiteLVLMError(f"--capture graph records CUDA graphs: it needs --device cuda (got {device})")
    if tflops not in ("auto", "measure", "off"):
        try:
            ok = float(tflops) > 0
        except ValueError:
            ok = False
        if not ok:
            raise LiteLVLMError(f"--matmul-tflops {tflops!r}: give a positive rate in TFLOP/s, auto, measure "
                                "or off")


__all__ = ["CAPTURE_CHOICES", "CAPTURE_HELP", "PREFILLS", "PREFILL_HELP", "TFLOPS_HELP", "check_prefill"]
