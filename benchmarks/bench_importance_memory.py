"""Peak memory and time of capturing the visual-token attention rows with hooks, vs a plain forward.

Prints, for a tiny and a mid-size random Llama (GLaMM-shaped sequence: a short prefix,
576 visual tokens, a text suffix), the activation peak of

* a plain forward (sdpa attention),
* the same forward with :func:`litelvlm.llm.attention_rows.capture_attention_rows`
  recording the rows of the [SEG]-predicting token, the last token and all text tokens onto
  the visual keys in EVERY layer,
* ``output_attentions=True`` (eager attention: every layer's full (H, S, S) matrix),

and checks that hooks <= 1.2x plain. Run: ``python benchmarks/bench_importance_memory.py
[--device cuda] [--configs tiny mid]``. Exit status 1 if the 1.2x bound fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from analysis.common.options.model_args import DTYPES
from litelvlm.llm.attention_rows import capture_attention_rows
from litelvlm.machine.memory import peak_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ratios, report  # noqa: E402

#: name -> (layers, width, heads, intermediate)
CONFIGS = {
    "tiny": (4, 64, 4, 128),          # the tiny GLaMM arch's LLM (litelvlm.glamm.config "tiny")
    "mid": (8, 1024, 16, 2816),
}
PREFIX, VISUAL, SUFFIX = 35, 576, 40


def build(name: str, device: torch.device, dtype: torch.dtype) -> LlamaForCausalLM:
    layers, width, heads, inter = CONFIGS[name]
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=width, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=2048)
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg).to(device=device, dtype=dtype).eval()


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs."""
    ts = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


def run_config(name: str, device: torch.device, dtype: torch.dtype, repeats: int) -> dict:
    model = build(name, device, dtype)
    width = model.config.hidden_size
    S = PREFIX + VISUAL + SUFFIX
    x = torch.randn(1, S, width, device=device, dtype=dtype)
    sets = {"seg": [S - 2], "last": [S - 1], "text": list(range(PREFIX + VISUAL, S))}
    vis = list(range(PREFIX, PREFIX + VISUAL))

    def plain():
        with torch.no_grad():
            return model(inputs_embeds=x, logits_to_keep=1).logits

    def hooked():
        with torch.no_grad(), capture_attention_rows(model, sets, vis, to_cpu=False) as rows:
            model(inputs_embeds=x, logits_to_keep=1)
        return rows

    def full():
        model.config._attn_implementation = "eager"
        try:
            with torch.no_grad():
                return model(inputs_embeds=x, logits_to_keep=1, output_attentions=True).attentions
        finally:
            model.config._attn_implementation = "sdpa"

    plain()
    res = {"config": name, "layers": CONFIGS[name][0], "width": width, "seq_len": S}
    for label, fn in (("plain", plain), ("hooks", hooked), ("output_attentions", full)):
        mem = peak_memory(fn, device)
        res[f"{label}_tracked_MiB"] = mem["tracked"] / 2**20
        if "allocator" in mem:
            res[f"{label}_allocator_MiB"] = mem["allocator"] / 2**20
        res[f"{label}_ms"] = 1e3 * timed(fn, repeats, device)
    key = "allocator" if device.type == "cuda" else "tracked"
    res["ratio_hooks_plain"] = res[f"hooks_{key}_MiB"] / res[f"plain_{key}_MiB"]
    res["ratio_full_plain"] = res[f"output_attentions_{key}_MiB"] / res[f"plain_{key}_MiB"]
    res["measure"] = key
    res["time_ratios_hooks_plain"] = paired_ratios(hooked, plain, repeats=max(3, repeats), warmup=0)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    device, dtype = torch.device(a.device), DTYPES[a.dtype]
    ok = True
    print(f"device={device} dtype={a.dtype} sequence={PREFIX}+{VISUAL}+{SUFFIX}; activation peaks in MiB "
          "(tracked = live tensors created by the forward; allocator = CUDA max_memory_allocated)")
    for name in a.configs:
        r = run_config(name, device, dtype, a.repeats)
        cols = ["plain", "hooks", "output_attentions"]
        print(f"\n[{name}] {r['layers']} layers, width {r['width']}, sequence {r['seq_len']}")
        for c in cols:
            extra = f"  allocator {r[f'{c}_allocator_MiB']:9.2f}" if f"{c}_allocator_MiB" in r else ""
            print(f"  {c:18s} tracked {r[f'{c}_tracked_MiB']:9.2f}{extra}  time {r[f'{c}_ms']:8.2f} ms")
        passed = r["ratio_hooks_plain"] <= 1.2
        ok &= passed
        print(f"  hooks / plain memory = {r['ratio_hooks_plain']:.3f} ({r['measure']}; target <= 1.2: "
              f"{'met' if passed else 'MISSED'});  output_attentions / plain = {r['ratio_full_plain']:.2f}")
        print("  " + report("hooks / plain time", r["time_ratios_hooks_plain"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
