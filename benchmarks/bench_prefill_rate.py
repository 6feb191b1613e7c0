"""Achieved prefill rate against this machine's matmul rate, per dtype: how close a GLaMM prefill runs to the
hardware's limit.

    python benchmarks/bench_prefill_rate.py --threads 2 --layers 1 --budgets 576,64 --repeats 2
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_prefill_rate.py   # an AVX2-only
    CPU

A stack of ``--layers`` Llama decoder layers of GLaMM-7B's widths (random weights; d=4096, m=11008, 32 heads)
runs the prefill of each run: ``none`` (all 576 visual tokens plus the 130 text tokens, n=706) and a CLIP-side
method at each budget K (n = 130 + K in every layer), in each dtype: ``bfloat16`` and ``float32`` (weights in
that dtype) and ``float32-upcast`` (``--layer-dtype float32``: bfloat16 weights cast up as each layer runs). A
run's achieved rate is its FLOPs, the project's analytic count
(``analysis.common.measures.flops.llm_flops_exact`` without the LM head: 2·L·(4nd² + 2n²d + 3ndm)), over its
median prefill time; it is printed as a fraction of the matmul rate measured here in the same dtype on the
same threads (the layer's largest product, n x d @ d x m in a linear layer's layout, best of the repeats).
Goal: at least 90% (MET / MISSED). Prints the CPU's flags; times on a loaded machine are inflated, and the
fractions are taken within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_layer_dtype import cpu_flags  # noqa: E402

GOAL = 0.90
TEXT_TOKENS = 130


def matmul_rate(dtype: torch.dtype, n: int, d: int, m: int, repeats: int) -> float:
    """GFLOP/s of the best of ``repeats`` products (n x d) @ (d x m) in ``dtype`` (after a warm-up), in a
    linear layer's layout (``F.linear``: the weight stored (m, d), as the decoder's; a plain ``a @ b`` of
    bfloat16 runs a far slower kernel on an AVX2-only CPU)."""
    a, w = torch.randn(n, d).to(dtype), torch.randn(m, d).to(dtype)
    torch.nn.functional.linear(a, w)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.nn.functional.linear(a, w)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n * d * m / best / 1e9


def build(cfg, layers: int, weights: torch.dtype, upcast: bool):
    """``layers`` decoder layers in ``weights`` (``upcast``: run in float32 by ``litelvlm.lvlm.upcast``)."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    from litelvlm.lvlm.upcast import upcast_layers

    stack = torch.nn.ModuleList(LlamaDecoderLayer(cfg, layer_idx=i) for i in range(layers)).to(weights).eval()
    if upcast:
        upcast_layers(stack)
    return stack


def prefill_seconds(stack, cfg, n: int, dtype: torch.dtype, repeats: int) -> float:
    """Median seconds of the stack's forward on ``n`` tokens (causal mask, RoPE), after one warm-up."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    x = torch.randn(1, n, cfg.hidden_size).to(dtype)
    pos = torch.arange(n)[None]
    rope = LlamaRotaryEmbedding(cfg)(x, pos)
    mask = torch.full((n, n), float("-inf")).triu(1)[None, None].to(dtype)

    def run() -> None:
        with torch.no_grad():
            h = x
            for layer in stack:
                out = layer(h, attention_mask=mask, position_embeddings=rope)
                h = out[0] if isinstance(out, tuple) else out

    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layers", type=int, default=1, help="decoder layers of GLaMM-7B's widths")
    p.add_argument("--budgets", default="576,64", help="visual tokens kept (576: none)")
    p.add_argument("--dtypes", default="bfloat16,float32,float32-upcast")
    p.add_argument("--attn", default="eager", choices=["eager", "sdpa"],
                   help="eager: GLaMM's official attention")
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args(argv)
    from analysis.common.measures.flops import DecoderSizes, llm_flops_exact, schedule_plan
    from litelvlm.glamm.config import get_arch, llava_config

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = llava_config(get_arch("glamm-7b")).text_config
    cfg._attn_implementation = a.attn
    d, m = cfg.hidden_size, cfg.intermediate_size
    sizes = DecoderSizes(d, m, a.layers, cfg.vocab_size)
    print(cpu_flags(), f"| {a.threads} threads, {a.layers} GLaMM-7B decoder layer(s), {a.attn} attention")
    rows = []
    for name in a.dtypes.split(","):
        compute = torch.float32 if name.startswith("float32") else getattr(torch, name)
        weights = torch.bfloat16 if name == "float32-upcast" else compute
        stack = build(cfg, a.layers, weights, upcast=name == "float32-upcast")
        for k in (int(b) for b in a.budgets.split(",")):
            n = TEXT_TOKENS + k
            plan = schedule_plan("none" if k == 576 else "litelvlm", k, 576, a.layers, TEXT_TOKENS)
            flops = llm_flops_exact(sizes, plan, lm_head=False)
            secs = prefill_seconds(stack, cfg, n, weights, a.repeats)
            peak = matmul_rate(compute, n, d, m, a.repeats)
            frac = flops / secs / 1e9 / peak
            rows.append(frac)
            print(f"{name:15s} n={n:4d}: {flops / 1e9:7.1f} GFLOP in {secs:6.2f} s = "
                  f"{flops / secs / 1e9:6.1f} GFLOP/s; matmul {peak:6.1f} GFLOP/s -> {frac:6.1%} "
                  f"{'MET' if frac >= GOAL else 'MISSED'} (goal {GOAL:.0%})")
        del stack
    print(f"all runs: {'MET' if min(rows) >= GOAL else 'MISSED'} (lowest {min(rows):.1%}); a loaded machine "
          "inflates times, so fractions below the goal may be the load's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
