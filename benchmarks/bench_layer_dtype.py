"""One full-size GLaMM-7B decoder layer (random bfloat16 weights) on 706 tokens: bfloat16 arithmetic against
``--layer-dtype float32`` (weights upcast while the layer runs), paired and interleaved.

    python benchmarks/bench_layer_dtype.py --threads 2 --repeats 5
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_layer_dtype.py   # an AVX2-only
    CPU

Prints the CPU's flags, the median seconds of each and the paired ratio bf16 / float32 (above 1: the
upcast is faster), and the extrapolation to one 32-layer prefill.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ratios, report, wall  # noqa: E402


def cpu_flags() -> str:
    """The bfloat16-relevant flags of this CPU (lscpu), and torch's CPU capability."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    flags = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f} " in f" {out} "]
    return f"{platform.processor() or platform.machine()}; flags: {' '.join(flags) or 'unknown'}; " \
           f"torch capability {torch.backends.cpu.get_cpu_capability()}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="paired runs")
    p.add_argument("--tokens", type=int, default=706, help="sequence length (GLaMM-7B at 576 visual tokens: "
                   "706)")
    a = p.parse_args(argv)
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    from litelvlm.glamm.config import get_arch, llava_config
    from litelvlm.lvlm.upcast import upcast_layers

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = llava_config(get_arch("glamm-7b")).text_config
    cfg._attn_implementation = "eager"
    layer = LlamaDecoderLayer(cfg, layer_idx=0).to(torch.bfloat16).eval()
    x = torch.randn(1, a.tokens, cfg.hidden_size, dtype=torch.bfloat16)
    pos = torch.arange(a.tokens)[None]
    cos, sin = LlamaRotaryEmbedding(cfg)(x, pos)
    mask = torch.full((a.tokens, a.tokens), float("-inf")).triu(1)[None, None].to(torch.bfloat16)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return layer(x, attention_mask=mask, position_embeddings=(cos, sin))

    handles: list = []

    def plain() -> None:
        run()

    def upcast() -> None:
        handles.extend(upcast_layers(torch.nn.ModuleList([layer])))
        try:
            run()
        finally:
            for h in handles:
                h.remove()
            handles.clear()

    print(cpu_flags(), f"| {a.threads} threads, {a.tokens} tokens, one GLaMM-7B decoder layer")
    ratios = paired_ratios(plain, upcast, repeats=a.repeats)
    t_bf16 = statistics.median(wall(plain) for _ in range(3))
    t_up = statistics.median(wall(upcast) for _ in range(3))
    print(f"bf16 {t_bf16:.2f} s, float32-upcast {t_up:.2f} s per layer; one 32-layer prefill: "
          f"{32 * t_bf16:.0f} s against {32 * t_up:.0f} s (EXTRAPOLATED)")
    print(report("bf16 / float32-upcast", ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
