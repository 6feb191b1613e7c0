"""GLaMM-7B's SAM ViT-H image encoder alone per attention kernel and path, beside its roofline.

    python benchmarks/bench_sam_encoder.py --device cuda --out OUT        # ViT-H, 1024 x 1024, bf16
    python benchmarks/bench_sam_encoder.py --dry-run --out /tmp/sam       # the same flow, scaled, on a CPU

transformers' ``SamModel`` image encoder at GLaMM-7B's widths (random weights; ``litelvlm.glamm.config``'s
``sam_config``) encodes one 1024 x 1024 image for each attention kernel (``eager``: the official; ``sdpa``:
transformers' ``SamVisionSdpaAttention``, switched as ``--attn sdpa`` switches it) and each path (``loop``:
the module's own forward; ``graph``: that forward as one CUDA graph, what ``--encoders graph`` records;
``fused``: each ViT layer through one inductor-compiled function, the whole encoder's calls replayed as one
CUDA graph, this project's measurement of what a compiled encoder could reach; ``compile``: the module's
forward through ``torch.compile``). Each row: median and min of ``--repeats`` timings after the warm-up (the
first call's time, compile included, is ``first_call_s``), the roofline (the larger of the counted FLOPs at
the matmul rate and the weights' bytes at the copy bandwidth, both measured in the same process), the ratio to
it, and the largest difference of the output from the first row's, relative to that output's largest
magnitude. Rows are appended to ``OUT/sam_encoder.csv`` as they are measured, so a run cut short keeps what it
finished. Random weights: times are the architecture's.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fused_prefill import timed  # noqa: E402  (first call s, median ms, min ms of a call)

from litelvlm.switches import CUDA_MODES  # noqa: E402

FIELDS = ["attn", "path", "median_ms", "min_ms", "first_call_s", "tflop", "weight_mb", "roofline_ms",
          "over_roofline", "max_rel_diff", "tflops", "copy_gbps", "device"]
PATHS = ("loop", "graph", "fused", "compile")


def build(args):
    """A random ``SamModel`` of ``args.arch``'s SAM on the device, in the benchmark's dtype."""
    from transformers import SamModel

    from litelvlm.glamm.config import get_arch, sam_config

    old = torch.get_default_dtype()
    torch.set_default_dtype(args.torch_dtype)
    try:
        with torch.device(args.device):
            sam = SamModel(sam_config(get_arch(args.arch))).eval()
    finally:
        torch.set_default_dtype(old)
    # transformers' init leaves biases, positions and relative positions at zero: fill every parameter, so the
    # outputs of two kernels or paths differ where their arithmetic does (norm weights about 1)
    gen = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for name, param in sam.named_parameters():
            noise = torch.randn(param.shape, generator=gen) * 0.02
            one = name.endswith("weight") and param.dim() == 1
            param.copy_(noise + (1.0 if one else 0.0))
    return sam


def layer_step(layer, hidden: torch.Tensor) -> torch.Tensor:
    """One ViT layer through its class's ``forward`` (what the fused path compiles once for every layer)."""
    out = type(layer).forward(layer, hidden)
    return out[0] if isinstance(out, tuple) else out


def encoder_fn(encoder, path: str, backend: str):
    """What one call of ``path`` runs on ``encoder`` (a ``SamVisionEncoder``), before any CUDA graph."""
    if path in ("loop", "graph"):
        return lambda pixels: encoder(pixels).last_hidden_state
    if path == "compile":
        compiled = torch.compile(encoder, backend=backend, dynamic=False)
        return lambda pixels: compiled(pixels).last_hidden_state
    step = torch.compile(layer_step, backend=backend, dynamic=False)

    def fused(pixels):   # the encoder's own order of calls (patch embedding, positions, layers, neck)
        hidden = encoder.patch_embed(pixels)
        if encoder.pos_embed is not None:
            hidden = hidden + encoder.pos_embed
        for layer in encoder.layers:
            hidden = step(layer, hidden)
        return encoder.neck(hidden)
    return fused


def as_graph(fn, pixels: torch.Tensor):
    """``fn`` recorded as one CUDA graph on a static copy of ``pixels`` (warmed on a side stream)."""
    static = pixels.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn(static)

    def replay(x):
        static.copy_(x)
        graph.replay()
        return out
    return replay


def count(encoder, pixels: torch.Tensor) -> tuple[float, int]:
    """(TFLOP of one eager call by torch's FLOP counter, the encoder's weight bytes)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        encoder(pixels)
    weight = sum(p.numel() * p.element_size() for p in encoder.parameters())
    return counter.get_total_flops() / 1e12, weight


def run(args) -> list[dict]:
    """Every (attention, path) row, appended to ``OUT/sam_encoder.csv`` as it is measured."""
    from litelvlm.cost.bound import copy_gbps, matmul_tflops
    from litelvlm.lvlm.numerics import set_attention

    sam = build(args)
    encoder = sam.vision_encoder
    size = encoder.config.image_size
    gen = torch.Generator(device="cpu").manual_seed(0)
    pixels = torch.randn(1, 3, size, size, generator=gen).to(args.device, args.torch_dtype)
    rate, bw = matmul_tflops(args.device, args.torch_dtype), copy_gbps(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    reference = None
    with (out / "sam_encoder.csv").open("w", newline="") as fh, torch.no_grad():
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        set_attention("eager", sam)   # the official attention's work: the roofline of every row
        tflop, weight = count(encoder, pixels)
        roof = max(tflop / rate * 1e3, weight / bw / 1e6)
        for attn in args.attn:
            set_attention(attn, sam)
            for path in [p for p in args.paths if p != "graph" or args.device == "cuda"]:
                try:
                    fn = encoder_fn(encoder, path, args.backend)
                    if args.device == "cuda" and path in CUDA_MODES:
                        fn = as_graph(fn, pixels)
                    first, med, best = timed(lambda fn=fn: fn(pixels), args.device, args.warmup, args.repeats)
                    got = fn(pixels).float()
                except Exception as err:  # noqa: BLE001 - a path the card cannot run: named, the rest goes on
                    why = str(err).splitlines()[0][:200]
                    print(f"{attn}/{path}: {type(err).__name__}: {why}", flush=True)
                    continue
                reference = got.clone() if reference is None else reference
                row = {"attn": attn, "path": path, "median_ms": round(med, 4), "min_ms": round(best, 4),
                       "first_call_s": round(first, 2), "tflop": round(tflop, 4),
                       "weight_mb": round(weight / 2**20, 1), "roofline_ms": round(roof, 4),
                       "over_roofline": round(med / roof, 3),
                       "max_rel_diff": float((got - reference).abs().max() / reference.abs().max()),
                       "tflops": round(rate, 1), "copy_gbps": round(bw, 1), "device": args.device}
                writer.writerow(row)
                fh.flush()
                rows.append(row)
                print(" ".join(f"{k}={row[k]}" for k in FIELDS[:10]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="the scaled SAM on a CPU, dynamo's eager backend")
    p.add_argument("--out", required=True)
    p.add_argument("--attn", nargs="+", default=["sdpa", "eager"], choices=["eager", "sdpa"])
    p.add_argument("--paths", nargs="+", default=["loop", "graph", "fused"], choices=PATHS)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    args.arch, args.torch_dtype, args.backend = "glamm-7b", torch.bfloat16, "inductor"
    if args.dry_run:
        args.device, args.arch, args.torch_dtype, args.backend = "cpu", "scaled", torch.float32, "eager"
        args.repeats, args.warmup = 2, 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
