"""Is a measured prefill bound by arithmetic or by overhead? Its arithmetic limit, its roofline, and the label
of a run far above it.

The roofline of a prefill (:func:`roofline_ms`): the larger of its compute time (2 x decoder parameters x
tokens at the measured matmul rate) and its weight-read time (the decoder's weight bytes at the measured copy
bandwidth, :func:`copy_gbps`), plus attention's causal products at the matmul rate. At short prompts a
prefill's floor is the weight read, which pruning cannot shrink: the roofline's own ratio between two runs is
the best speed-up pruning can reach.

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

import functools
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


def copy_gbps(device: str | torch.device, mib: int | None = None, repeats: int = 5) -> float:
    """GB/s of the best of ``repeats`` device-to-device copies of ``mib`` MiB (default 1024 on CUDA, 256
    elsewhere), counting the bytes read and written: the memory traffic rate a weight read runs at."""
    device = torch.device(device)
    n = (mib or (1024 if device.type == "cuda" else 256)) * 2 ** 20
    src = torch.empty(n, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    dst.copy_(src)
    sync()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n / best / 1e9


def roofline_ms(params: int, num_layers: int, tokens: int, width: int, tflops: float, gbps: float,
                weight_bytes: float | None = None, layer_tokens: int | None = None) -> float:
    """The roofline (ms) of a prefill of ``tokens`` through ``num_layers`` decoder layers holding ``params``
    (``weight_bytes``; default 2 per parameter): max(2 x params x tokens / rate, weight bytes / bandwidth) +
    attention's causal products (2 x tokens^2 x ``width`` per layer) at the rate; ``layer_tokens``: tokens
    summed over the layers where a method prunes inside the LLM (default ``tokens`` x ``num_layers``)."""
    if not tflops or tflops <= 0 or not gbps or gbps <= 0 or num_layers <= 0:
        return math.nan
    summed = tokens * num_layers if layer_tokens is None else layer_tokens
    compute = 2.0 * params / num_layers * summed / (tflops * 1e12)
    weights = (2.0 * params if weight_bytes is None else weight_bytes) / (gbps * 1e9)
    mean = summed / num_layers
    attention = 2.0 * mean * mean * width * num_layers / (tflops * 1e12)
    return (max(compute, weights) + attention) * 1e3


@functools.cache
def device_gbps(device: str) -> float:
    """:func:`copy_gbps` of ``device``, measured once per process."""
    return copy_gbps(device)


def decoder_bytes(lm) -> int:
    """Bytes of the LLM's decoder-layer weights as stored (a quantized layer's smaller storage counted)."""
    return sum(t.numel() * t.element_size() for t in (*lm.layers.parameters(), *lm.layers.buffers()))


def lm_roofline_ms(lm, tokens: int, tflops: float, gbps: float, layer_tokens: int | None = None) -> float:
    """:func:`roofline_ms` of the family's decoder stack ``lm`` (``lm.layers``, ``lm.config.hidden_size``)."""
    layers = len(lm.layers)
    return roofline_ms(decoder_params(lm), layers, tokens, int(lm.config.hidden_size), tflops, gbps,
                       decoder_bytes(lm), layer_tokens)


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


def bound_note(measured_ms: float, limit: float, what: str = "arithmetic limit") -> str | None:
    """``overhead-bound (N.Nx its <what>)`` when ``measured_ms`` exceeds :data:`OVERHEAD_BOUND` times
    ``limit`` (the roofline where known); None otherwise (or when either is unknown)."""
    if not (limit > 0 and measured_ms > 0) or math.isnan(measured_ms) or math.isnan(limit):
        return None
    ratio = measured_ms / limit
    return f"overhead-bound ({ratio:.1f}x its {what})" if ratio > OVERHEAD_BOUND else None


def screen_note(ratios: list[float], captured: bool = False, what: str = "arithmetic limit") -> str | None:
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
            f"{what} (> {OVERHEAD_BOUND:g}x: {why}); their speed-ups do not show what pruning saves"
            + ("" if captured else " (try --prefill captured)"))


__all__ = ["GEMM_SIZE", "OVERHEAD_BOUND", "bound_note", "copy_gbps", "decoder_bytes", "decoder_params",
           "device_gbps", "limit_ms", "lm_roofline_ms", "matmul_tflops", "roofline_ms", "screen_note",
           "token_layers"]
