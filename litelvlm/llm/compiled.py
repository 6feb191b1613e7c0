"""A compiled prefill (``validate --compile``; this project's option): each LLM decoder layer's ``forward``
through ``torch.compile``, so that on CUDA a batch-1 prefill is bound by arithmetic rather than by kernel
launches.

A 706-token GLaMM-7B prefill on an H100 launches hundreds of small kernels per layer; at batch 1 their launch
overhead (30-50 ms a prefill) drowns the speed-up that pruning exists for. On CUDA the default mode is
``"reduce-overhead"``: inductor's fused kernels replayed as CUDA graphs, one per layer and sequence length
(static shapes: every (method, budget) compiles once, in the untimed warm-up calls of :data:`WARMUP_CALLS`).
That mode crashed on CUDA ("accessing tensor output of CUDAGraphs that has been overwritten by a subsequent
run": one layer's graph output overwritten before the next layer read it), so on CUDA the layers are now
compiled without CUDA graphs (mode None; the prefill halves but stays bound by per-layer overhead); the whole
stack as one CUDA graph is
:mod:`litelvlm.llm.captured` (``--prefill captured``). Only the
layer's ``forward`` is compiled: the module's hooks (the timing probes, ``--layer-dtype float32``'s upcast,
the methods' attention readers) stay eager around it, and the layers are still called one by one, so every
pruning method runs unchanged. On a CPU the compiled path is for the equivalence tests
(``backend="aot_eager"`` traces and replays the same operations: equal to the eager path bit for bit).
"""

from __future__ import annotations

import torch
from torch import nn

from .captured import RECOMPILE_LIMIT, raise_recompile_limits  # noqa: F401 (RECOMPILE_LIMIT re-exported)

#: untimed calls of one sequence length before it is timed (compile; CUDA graphs: warm up, then record)
WARMUP_CALLS = 2


def default_mode(device: str | torch.device) -> str | None:
    """``torch.compile``'s mode for ``device``: the default everywhere (per-layer CUDA graphs overwrite each
    other's outputs on CUDA; ``--prefill captured`` graphs the whole stack)."""
    torch.device(device)  # a bad device name is refused here
    return None


def compile_layers(layers: nn.ModuleList, mode: str | None = None, backend: str = "inductor") -> dict:
    """Compile each of ``layers``' ``forward`` in place (static shapes; hooks stay eager); returns the record
    for a run's config (``uncompile_layers`` restores the eager layers)."""
    raise_recompile_limits(len(layers))   # one compiled variant per sequence length, per layer
    for layer in layers:
        layer.forward = torch.compile(type(layer).forward.__get__(layer), mode=mode, backend=backend,
                                      dynamic=False)
    return {"compiled": "llm decoder layers", "backend": backend, "mode": mode or "default", "dynamic": False}


def uncompile_layers(layers: nn.ModuleList) -> None:
    """Undo :func:`compile_layers`: the layers' own ``forward`` again."""
    for layer in layers:
        layer.__dict__.pop("forward", None)


__all__ = ["RECOMPILE_LIMIT", "WARMUP_CALLS", "compile_layers", "default_mode", "uncompile_layers"]
