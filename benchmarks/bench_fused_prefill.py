"""The LLM prefill of GLaMM-7B's decoder stack per attention kernel and prefill path, beside its roofline.

    python benchmarks/bench_fused_prefill.py --device cuda --out OUT          # 32 Llama layers, d=4096, bf16
    python benchmarks/bench_fused_prefill.py --dry-run --out /tmp/fused       # the same flow, tiny, on a CPU

A ``LlamaModel`` of GLaMM-7B's widths (random weights; d=4096, m=11008, 32 heads, 32 layers; no embedding or
head) runs the decoder-layer loop of the project (``litelvlm.llm.context.run_layers``) at the sequence lengths
of ``none`` (713 tokens: 576 visual and 137 text) and of a CLIP-side method at each budget K (137 + K), for
each attention kernel (``eager``: the official; ``sdpa``; ``flash``: SDPA restricted to its flash backend)
and each prefill path (``loop``: each layer from Python; ``graph``: CUDA graphs of the eager layers;
``fused``: one inductor-compiled layer function, the segment of its calls replayed as one CUDA graph,
``--capture fused``; ``stack``: the whole segment through one ``torch.compile``, ``--capture compile``). Each
row: median and min of ``--repeats`` CUDA-event timings after the warm-up calls (the first call's time,
compile included, is ``first_call_s``), the roofline (``litelvlm.cost.bound.roofline_ms``: the larger of
compute and weight-read time plus attention's FLOPs, at the matmul rate and copy bandwidth measured in the
same process), the ratio to it, and the speed-up over ``none`` beside the roofline's own ratio. Rows are
appended to ``OUT/fused_prefill.csv`` as they are measured, so a step cut short keeps what it finished.
Random weights: times are the architecture's, nothing else.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from litelvlm.switches import ATTN_IMPLEMENTATIONS  # noqa: E402

TEXT = 137
FIELDS = ["attn", "path", "budget", "seq_len", "median_ms", "min_ms", "first_call_s", "roofline_ms",
          "over_roofline", "speedup_vs_none", "roofline_speedup", "tflops", "copy_gbps", "device"]


def build(args) -> torch.nn.Module:
    """A random ``LlamaModel`` (no embedding table to speak of) of the requested widths on the device."""
    from transformers import LlamaConfig, LlamaModel

    cfg = LlamaConfig(hidden_size=args.width, intermediate_size=args.mlp, num_attention_heads=args.heads,
                      num_key_value_heads=args.heads, num_hidden_layers=args.layers, vocab_size=8,
                      max_position_embeddings=4096)
    old = torch.get_default_dtype()
    torch.set_default_dtype(args.torch_dtype)
    try:
        with torch.device(args.device):
            lm = LlamaModel(cfg).eval()
    finally:
        torch.set_default_dtype(old)
    return lm


def timed(fn, device: str, warmup: int, repeats: int) -> tuple[float, float, float]:
    """(first call s, median ms, min ms) of ``fn`` (CUDA events on cuda, perf_counter elsewhere)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return first, statistics.median(times), min(times)


def measure_run(args, lm, attn: str, path: str, budget: int) -> tuple[float, float, float] | None:
    """(first call s, median ms, min ms) of one prefill of ``137 + budget`` tokens; None where the kernel
    fails (named on screen)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from litelvlm.llm.context import run_layers

    n = TEXT + budget
    gen = torch.Generator(device="cpu").manual_seed(budget)
    hidden = torch.randn(1, n, args.width, generator=gen).to(args.device, args.torch_dtype)
    pos = torch.arange(n, device=args.device)[None]

    def call():
        with torch.no_grad():
            if attn == "flash":
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    return run_layers(lm, hidden, pos)
            return run_layers(lm, hidden, pos)

    try:
        return timed(call, args.device, args.warmup, args.repeats)
    except Exception as err:  # noqa: BLE001 - a kernel the card lacks: named, the rest goes on
        print(f"{attn}/{path}/n={n}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        return None


def run(args) -> list[dict]:
    """Every (attention, path, budget) row, appended to ``OUT/fused_prefill.csv`` as it is measured."""
    from litelvlm.cost.bound import copy_gbps, decoder_params, matmul_tflops, roofline_ms
    from litelvlm.llm.captured import install, uninstall

    lm = build(args)
    rate, bw = matmul_tflops(args.device, args.torch_dtype), copy_gbps(args.device)
    params = decoder_params(lm)
    roof = {b: roofline_ms(params, args.layers, TEXT + b, args.width, rate, bw, params * args.bytes_per_param)
            for b in args.budgets}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with (out / "fused_prefill.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        for attn in args.attn:
            lm.config._attn_implementation = "sdpa" if attn == "flash" else attn
            for path in [p for p in args.paths if p != "graph" or args.device == "cuda"]:
                uninstall(lm) if path == "loop" else install(lm, {"graph": "graph", "fused": args.fused,
                                                                   "stack": args.stack}[path])
                base = None
                for budget in args.budgets:
                    got = measure_run(args, lm, attn, path, budget)
                    if got is None:
                        continue
                    first, med, best = got
                    base = med if budget == args.budgets[0] else base
                    row = {"attn": attn, "path": path, "budget": budget, "seq_len": TEXT + budget,
                           "median_ms": round(med, 4), "min_ms": round(best, 4),
                           "first_call_s": round(first, 2), "roofline_ms": round(roof[budget], 4),
                           "over_roofline": round(med / roof[budget], 3),
                           "speedup_vs_none": round(base / med, 3) if base else "",
                           "roofline_speedup": round(roof[args.budgets[0]] / roof[budget], 3),
                           "tflops": round(rate, 1), "copy_gbps": round(bw, 1), "device": args.device}
                    writer.writerow(row)
                    fh.flush()
                    rows.append(row)
                    print(" ".join(f"{k}={row[k]}" for k in FIELDS[:11]), flush=True)
    uninstall(lm)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="tiny widths on a CPU, dynamo's eager backend")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--attn", nargs="+", default=list(ATTN_IMPLEMENTATIONS))
    p.add_argument("--paths", nargs="+", default=["loop", "graph", "fused"],
                   choices=["loop", "graph", "fused", "stack"],
                   help="stack: the whole segment through one torch.compile (--capture compile)")
    p.add_argument("--budgets", type=int, nargs="+", default=[576, 192, 64])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    args.width, args.mlp, args.heads = 4096, 11008, 32
    args.torch_dtype, args.bytes_per_param, args.fused, args.stack = torch.bfloat16, 2, "fused", "compile"
    if args.dry_run:
        args.device, args.layers, args.width, args.mlp, args.heads = "cpu", 2, 64, 128, 4
        args.torch_dtype, args.bytes_per_param = torch.float32, 4
        args.fused, args.stack = "fused-eager", "compile-eager"
        args.attn = [a for a in args.attn if a != "flash"]
        args.repeats, args.warmup = 2, 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
