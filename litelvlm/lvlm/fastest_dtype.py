"""The compute dtype that is fastest on this machine (``--layer-dtype auto``, ``efficiency --dtype auto``;
this project's option): bfloat16 or float32, decided once per process by a short measured micro-benchmark.

CPUs differ: with AMX, bfloat16 matrix products run several times faster than float32; with ``avx512_bf16``
and no AMX, float32 ran 1.5-1.8x faster than bfloat16 (an AMD EPYC); with AVX2 only, bfloat16 is emulated and
float32 ran about 5x faster (15 against 77 GFLOP per CPU-second with MKL held to AVX2; docs/validate.md). So
on a CPU
:func:`fastest_dtype` times a few matrix products of the model's layer shape (its hidden width, its MLP width
capped: 8 products in all, 2.7 s at GLaMM-7B's widths on 2 heavily loaded cores) in each dtype, interleaved,
on the threads the run uses, and picks the faster; bfloat16 (the official GLaMM arithmetic) is kept unless
float32 is faster by more than
:data:`MARGIN`. On CUDA it is bfloat16 without a benchmark (tensor cores: bfloat16 is the fast dtype there).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

#: float32 replaces bfloat16 only when it is faster by more than this fraction (the official dtype wins ties)
MARGIN = 0.05
#: the micro-benchmark's largest operands: rows (tokens) and output columns, capped so it takes well under a
#: second
MAX_ROWS, MAX_COLS = 256, 2048
#: timed products per dtype and round (2 interleaved rounds; the fastest counts), each after an untimed
#: warm-up
REPEATS = 1


@dataclass(frozen=True)
class DtypeChoice:
    """What ``auto`` chose, and why (recorded in a run's ``config.json``)."""

    dtype: str                                  # "bfloat16" or "float32"
    device: str                                 # "cpu" or "cuda"
    reason: str
    # measured GFLOP/s per dtype (empty: not measured)
    gflops: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int, int] | None = None   # (rows, inner, columns) of the timed products
    threads: int | None = None

    def to_dict(self) -> dict:
        """JSON-able record."""
        d = asdict(self)
        d["shape"] = list(self.shape) if self.shape else None
        return d


def matmul_seconds(dtype: torch.dtype, shape: tuple[int, int, int], repeats: int = REPEATS) -> float:
    """The fastest of ``repeats`` timed products ``(rows x inner) @ (inner x cols)`` in ``dtype`` on the CPU
    (after one untimed warm-up), in a linear layer's layout (``F.linear``, the weight stored (cols, inner): a
    plain ``a @ b`` of bfloat16 runs a far slower kernel on an AVX2-only CPU than the layers do)."""
    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g).to(dtype)
    w = torch.randn(n, k, generator=g).to(dtype)
    torch.nn.functional.linear(a, w)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.nn.functional.linear(a, w)
        best = min(best, time.perf_counter() - t0)
    return best


def bench_shape(tokens: int, hidden: int, intermediate: int) -> tuple[int, int, int]:
    """The timed products' shape for a layer of ``hidden`` / ``intermediate`` widths on ``tokens`` tokens: the
    layer's inner width, rows and columns capped by :data:`MAX_ROWS` / :data:`MAX_COLS`."""
    return min(tokens, MAX_ROWS), hidden, min(intermediate, MAX_COLS)


_CHOICES: dict[tuple, DtypeChoice] = {}


def fastest_dtype(device: str | torch.device = "cpu", tokens: int = 706, hidden: int = 4096,
                  intermediate: int = 11008) -> DtypeChoice:
    """The faster of bfloat16 and float32 for a layer of these widths on ``device`` (see the module
    docstring); measured once per process for each shape and thread count."""
    dev = torch.device(device).type
    if dev == "cuda":
        return DtypeChoice("bfloat16", "cuda", "cuda: bfloat16 (tensor cores; no benchmark)")
    shape, threads = bench_shape(tokens, hidden, intermediate), torch.get_num_threads()
    key = (dev, shape, threads)
    if key not in _CHOICES:
        flops = 2.0 * shape[0] * shape[1] * shape[2]
        secs = {"bfloat16": float("inf"), "float32": float("inf")}
        for _ in range(2):  # interleaved rounds: a load change on the machine hits both dtypes
            for name in secs:
                secs[name] = min(secs[name], matmul_seconds(getattr(torch, name), shape))
        rate = {name: flops / s / 1e9 for name, s in secs.items()}
        pick = "float32" if rate["float32"] > rate["bfloat16"] * (1 + MARGIN) else "bfloat16"
        why = (f"measured on {threads} thread(s): float32 {rate['float32']:.1f} GFLOP/s, bfloat16 "
               f"{rate['bfloat16']:.1f} GFLOP/s")
        _CHOICES[key] = DtypeChoice(pick, dev, why, {k: float(f"{v:.4g}") for k, v in rate.items()}, shape,
                                    threads)
    return _CHOICES[key]


def clear_cache() -> None:
    """Forget the decisions of this process (the next :func:`fastest_dtype` measures again)."""
    _CHOICES.clear()


__all__ = ["DtypeChoice", "bench_shape", "clear_cache", "fastest_dtype", "matmul_seconds"]
