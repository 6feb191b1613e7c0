"""Is a measured prefill bound by arithmetic or by overhead? Its arithmetic limit, and the label of a run far
above it.

The arithmetic limit of a prefill (this project's yardstick): 2 x (the parameters of the LLM's decoder layers)
x (tokens, per layer) over the device's matrix-product rate, measured here by a large GEMM in the run's dtype
(:func:`matmul_tflops`). A prefill that takes more than :data:`OVERHEAD_BOUND` times its limit is bound by
per-layer overhead and kernel launches, not by its arithmetic: its times do not show what pruning saves (at
batch 1 on a GPU an eager prefill sits 5-10x above its limit and stays flat across budgets), and ``validate``
and ``efficiency`` say so beside it (:func:`bound_note`). Attention's own n^2 products are left out: the limit
is a lower bound. With the layers captured (``--prefill captured``) the launches are gone, so a run still
above the bound is named for what the limit leaves out (a long prompt's attention) or overhead outside the
capture.
"""

from __future__ import annotations

import math
import time

import torch

#: measured / limit above which a run is called overhead-bound
OVERHEAD_BOUND = 3.0
#: the GEMM's side (n x n @ n x n) per device type
GEMM_SIZE = {"cuda": 8192, "cpu": 1024}


def matmul_tflops(device: str | torch.device, dtype: torch.dtype = torch.bfloat16, size: int | None = None,
                  repeats: int = 5) -> float:
    """TFLOP/s of the best of ``repeats`` square products (``size``; default :data:`GEMM_SIZE`) in ``dtype``
    on ``device``, in a linear layer's layout, after a warm-up (CUDA-synchronised)."""
    device = torch.device(device)
    n = size or GEMM_SIZE.get(device.type, 1024)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    w = torch.randn(n, n, generator=gen).to(device, dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.nn.functional.linear(a, w)
    sync()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.nn.functional.linear(a, w)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e12


def decoder_params(lm) -> int:
    """Parameters of the LLM's decoder layers (``lm.layers``: what the prefill's loop multiplies by)."""
    return sum(p.numel() for p in lm.layers.parameters())


def token_layers(tokens_in: int, tokens_out: int, prune_layer: int, num_layers: int) -> int:
    """Tokens summed over the layers: ``tokens_in`` in layers before ``prune_layer``, ``tokens_out`` from it
    on (a method pruning at several layers is counted at its first: the limit stays a lower bound's upper
    side)."""
    k = min(max(int(prune_layer), 0), num_layers)
    return tokens_in * k + tokens_out * (num_layers - k)


def limit_ms(layer_params: int, num_layers: int, layer_tokens: int, tflops: float) -> float:
    """The arithmetic limit (ms) of a prefill: 2 x params-per-layer x ``layer_tokens`` / ``tflops``."""
    if not tflops or tflops <= 0 or num_layers <= 0:
        return math.nan
    return 2.0 * layer_params / num_layers * layer_tokens / (tflops * 1e12) * 1e3


def bound_note(measured_ms: float, limit: float) -> str | None:
    """``overhead-bound (N.Nx its arithmetic limit)`` when ``measured_ms`` exceeds :data:`OVERHEAD_BOUND`
    times ``limit``; None otherwise (or when either is unknown)."""
    if not (limit > 0 and measured_ms > 0) or math.isnan(measured_ms) or math.isnan(limit):
        return None
    ratio = measured_ms / limit
    return f"overhead-bound ({ratio:.1f}x its arithmetic limit)" if ratio > OVERHEAD_BOUND else None


def screen_note(ratios: list[float], captured: bool = False) -> str | None:
    """The on-screen warning for a run whose prefills sit above :data:`OVERHEAD_BOUND` times their limit (the
    ``over_limit`` ratios of its rows; ``captured``: the run's prefill was already captured), None when none
    does."""
    bad = [r for r in ratios if r == r and r > OVERHEAD_BOUND]
    if not bad:
        return None
    why = ("with the decoder layers captured: work the limit leaves out, attention's n^2 products and its "
           "scores' memory traffic, or overhead outside the captured stack" if captured
           else "per-layer overhead and kernel launches, not arithmetic")
    return (f"overhead-bound: {len(bad)} of {len(ratios)} prefills took {min(bad):.1f}-{max(bad):.1f}x their "
            f"arithmetic limit (> {OVERHEAD_BOUND:g}x: {why}); their speed-ups do not show what pruning saves"
            + ("" if captured else " (try --prefill captured)"))


__all__ = ["GEMM_SIZE", "OVERHEAD_BOUND", "bound_note", "decoder_params", "limit_ms", "matmul_tflops",
           "screen_note", "token_layers"]
