"""Grounding throughput per batch size: images per second, CPU-seconds per image and peak activation memory at
batch sizes B (``eval-grounding --batch-size``; ``GroundingPipeline.ground_many``), for ``none``
against the methods at each budget, and the largest B that fits a memory limit (pruning shortens every
sequence, so a pruned batch takes less memory and more prompts fit).

Details: docs/testing.md (``benchmarks.bench_throughput``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_layer_dtype import cpu_flags  # noqa: E402

from analysis.common.options.prefill_args import (  # noqa: E402
    CAPTURE_CHOICES,
    CAPTURE_HELP,
    PREFILL_HELP,
    PREFILLS,
    resolve_prefill,
)
from litelvlm.switches import ATTN_IMPLEMENTATIONS  # noqa: E402

GOAL = 2.0
#: the GPU check's second throughput target: LiteLVLM@192 at B = 32 over ``none`` at B = 1
GOAL_B32 = 3.0
#: ``--dry-run``'s settings (each unless given)
DRY_RUN = {"device": "cpu", "prefill": "captured", "capture": "fused-eager", "batch_sizes": [1, 2],
           "budgets": [64], "repeats": 1}
SIZES = [(53, 37), (41, 64), (50, 50), (64, 48), (37, 61), (60, 45), (45, 45), (59, 39)]


def prompts(pipe, count: int, refer_dir: str | None) -> list:
    """``count`` prepared images with one expression each (the first images of ``refer_dir``, else
    synthetic)."""
    from PIL import Image

    if refer_dir:
        from litelvlm.data.refer import load_refer

        first: dict = {}
        for r in load_refer(refer_dir, None, split="all"):
            first.setdefault(r.image_id, r)
        recs = list(first.values())[:count]
        pairs = [(r.image(), r.sentence) for r in recs]
    else:
        rng = np.random.default_rng(0)
        pairs = [(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)), f"the object number {i}")
                 for i, (w, h) in enumerate(SIZES)]
    pairs = [pairs[i % len(pairs)] for i in range(count)]
    with torch.no_grad():
        return [pipe.with_sentences(pipe.prepare_image(im, seed=0), [s]) for im, s in pairs]


def ground_all(pipe, preps: list, method: str, budget, batch: int, batched: bool, sub_batch="auto") -> None:
    """Ground every prompt: one by one (B = 1, or a method that cannot batch), else B prompts per
    ``ground_many`` (its LLM forward split into cache-sized sub-batches per ``sub_batch``, its
    ``sub_batch_bytes``)."""
    with torch.no_grad():
        if batch == 1 or not batched:
            for p in preps:
                pipe.ground(p, method, budget)
        else:
            for i in range(0, len(preps), batch):
                pipe.ground_many(preps[i:i + batch], method, budget, sub_batch_bytes=sub_batch)


class ForwardRows:
    """The most sequences one forward of an LLM's decoder stack held since the last :meth:`reset`
    (``rows``): a pre-hook on its first layer that only reads (``observes_only``: a captured prefill still
    captures that layer)."""

    observes_only = True

    def __init__(self, layers) -> None:
        self.rows = 0
        self.handle = layers[0].register_forward_pre_hook(self.seen, with_kwargs=True)

    def seen(self, module, args, kwargs) -> None:
        """Record the batch entering the first layer."""
        hidden = args[0] if args else kwargs["hidden_states"]
        self.rows = max(self.rows, int(hidden.shape[0]))

    def reset(self) -> None:
        """Count afresh."""
        self.rows = 0


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA), so that a timer reads finished work."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def warmup_prompts(count: int, batch: int, batched: bool, mode: str) -> int:
    """How many of the ``count`` prompts the untimed warm-up of batch size ``batch`` grounds: all of them for
    ``full`` (every sequence length and padded shape of the timed pass has run once: a GPU's first calls of a
    shape choose kernels and grow the allocator's pool), else one batch of at most 2 (one prompt for a method
    that cannot batch)."""
    if mode == "full":
        return count
    return min(batch, 2, count) if batched else 1


def measure(pipe, preps: list, method: str, budget, batches: list[int], repeats: int, device: str,
            sub_batch="auto", warmup: str = "short") -> list[dict]:
    """Per batch size in ``batches``: the best-of-``repeats`` wall and CPU seconds of grounding ``preps``, the
    repeats interleaved across the batch sizes (a load that comes and goes hits every B alike), and one
    batch's peak; ``warmup``: :func:`warmup_prompts`' mode."""
    from litelvlm.llm.captured import runner_of
    from litelvlm.lvlm.batched import batch_error
    from litelvlm.machine.memory import peak_activation_bytes

    batched = batch_error(pipe, method) is None
    for b in batches:  # warm-up
        warm = warmup_prompts(len(preps), b, batched, warmup)
        ground_all(pipe, preps[:warm], method, budget, min(b, warm), batched, sub_batch)
    wall, cpu = dict.fromkeys(batches, math.inf), dict.fromkeys(batches, math.inf)
    runner, rows_seen = runner_of(pipe.language_model), dict.fromkeys(batches, 0)
    calls: dict[int, Counter] = {b: Counter() for b in batches}
    watch = ForwardRows(pipe.language_model.layers)
    try:
        for _ in range(repeats):
            for b in batches:
                watch.reset()
                if runner is not None:
                    runner.reset_counts()
                sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                ground_all(pipe, preps, method, budget, b, batched, sub_batch)
                sync(device)
                wall[b] = min(wall[b], time.perf_counter() - t0)
                cpu[b] = min(cpu[b], time.process_time() - c0)
                rows_seen[b] = max(rows_seen[b], watch.rows)
                calls[b].update(runner.counts if runner is not None else {"eager": 1})
    finally:
        watch.handle.remove()
    rows = []
    for b in batches:
        one = b if batched else 1   # a method that cannot batch holds one prompt's activations at a time
        peak, _ = peak_activation_bytes(
            lambda one=one: ground_all(pipe, preps[:one], method, budget, one, batched,
                                                                   sub_batch), device)
        rows.append({"batched": batched, "llm_batch": rows_seen[b], "prefill": prefill_path(calls[b]),
                     "images": len(preps), "seconds": wall[b], "cpu_seconds": cpu[b],
                     "images_per_s": len(preps) / wall[b], "cpu_s_per_image": cpu[b] / len(preps),
                     "peak_mib": peak / 2**20})
    return rows


def prefill_path(calls: Counter) -> str:
    """``captured``, ``eager`` or ``mixed``: how the decoder-layer calls counted in ``calls`` ran."""
    cap, eag = calls["captured"], calls["eager"]
    return "mixed" if cap and eag else "captured" if cap else "eager"


def stage_times(pipe, preps: list, method: str, budget) -> dict:
    """Each stage's median milliseconds (``stage_<stage>_ms``) over one batch-1 ``ground`` call per prompt,
    each under :class:`litelvlm.cost.stages.StageTimer`."""
    from analysis.common.presentation.stage_plots import median_stages, stage_row
    from litelvlm.cost.stages import time_stages

    with torch.no_grad():
        return median_stages([stage_row(time_stages(pipe, lambda p=p: pipe.ground(p, method, budget))[1])
                              for p in preps])


def largest_batch(rows: pd.DataFrame, limit_mib: float) -> int | None:
    """The largest B whose extrapolated peak (a line through the smallest and largest measured B) fits the
    limit; None for a method that cannot batch."""
    if not rows["batched"].all() or len(rows) < 2:
        return None
    lo, hi = rows.iloc[0], rows.iloc[-1]
    per = max((hi["peak_mib"] - lo["peak_mib"]) / (hi["batch_size"] - lo["batch_size"]), 1e-9)
    fixed = lo["peak_mib"] - per * lo["batch_size"]
    return max(0, int((limit_mib - fixed) // per))


def bench_model(model: str, a) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every (method, budget, B) of one model, with the speed-up over B = 1 and the largest B in the limit;
    and the batch-1 calls' time by stage per (method, budget)."""
    from litelvlm.methods import get_method
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model, device=a.device, **({"tokenizer": a.tokenizer} if a.tokenizer else {}),
                         **({} if a.dtype == "auto" else {"dtype": getattr(torch, a.dtype)}))
    # the LLM's attention kernel (eager: the official stack's, every S x S row materialised)
    if a.attn != "eager":
        from litelvlm.lvlm.numerics import set_attention

        set_attention(a.attn, llm=pipe.language_model)
    # --prefill auto: the captured prefill on CUDA (a batch's padded forward through the captured segments)
    if resolve_prefill(a.prefill, a.device) == "captured":
        from litelvlm.llm.captured import install

        install(pipe.language_model, None if a.capture == "auto" else a.capture)
    preps = prompts(pipe, max(a.batch_sizes), a.refer_dir)
    out, stages = [], []
    for method in a.methods:
        for budget in [None] if get_method(method).baseline else a.budgets:
            rows = measure(pipe, preps, method, budget, a.batch_sizes, a.repeats, a.device, a.sub_batch_bytes,
                           a.warmup)
            stages.append({"model": model, "method": method, "budget": budget or "all",
                           **stage_times(pipe, preps, method, budget)})
            for b, row in zip(a.batch_sizes, rows, strict=True):
                out.append({"model": model, "method": method, "budget": budget or "all", "batch_size": b,
                            **row, "warmup": a.warmup})
                print(f"{model} {method}@{budget or 'all'} B={b}: {row['images_per_s']:.2f} images/s, "
                      f"{row['cpu_s_per_image']:.3f} CPU-s/image, peak {row['peak_mib']:.1f} MiB", flush=True)
    df = pd.DataFrame(out)
    base = df[df["batch_size"] == min(a.batch_sizes)].set_index(["method", "budget"])["images_per_s"]
    df["speedup_vs_b1"] = [r.images_per_s / base[(r.method, r.budget)] for r in df.itertuples()]
    fits = {k: largest_batch(g, a.memory_limit_gib * 1024) for k,
            g in df.groupby(["method", "budget"], sort=False)}
    df["largest_batch_in_limit"] = [fits[(r.method, r.budget)] for r in df.itertuples()]
    df["fit"] = "linear in B (extrapolated)"
    return df, pd.DataFrame(stages)


def goal_lines(df: pd.DataFrame) -> list[str]:
    """The goals' verdicts per model: ``none`` at B = 8 over B = 1, and LiteLVLM@192 at B = 32 over ``none``
    at B = 1, each where its rows were measured."""
    out = []
    for model, rows in df.groupby("model", sort=False):
        def ips(method, budget, b, rows=rows):
            got = rows[(rows["method"] == method) & (rows["budget"].astype(str) == budget)
                       & (rows["batch_size"] == b)]["images_per_s"]
            return float(got.iloc[0]) if len(got) else None

        base = ips("none", "all", 1)
        for label, got, goal in (("none at B = 8 over B = 1", ips("none", "all", 8), GOAL),
                                 ("LiteLVLM@192 at B = 32 over none at B = 1", ips("litelvlm", "192", 32),
                                  GOAL_B32)):
            if base and got:
                out.append(f"{model}: {label}: {got / base:.2f}x images/s "
                           f"(goal {goal:g}x: {'MET' if got / base >= goal else 'MISSED'})")
    return out


def parser() -> argparse.ArgumentParser:
    """The benchmark's options (``--dry-run`` and the defaults it changes: :func:`parse_args`)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["tiny-random:0"])
    p.add_argument("--methods", nargs="+", default=["none", "litelvlm", "fastv"])
    p.add_argument("--budgets", nargs="+", type=int, default=None, help="default 192 64")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default 1 8 32")
    p.add_argument("--repeats", type=int, default=None, help="default 2")
    p.add_argument("--memory-limit-gib", type=float, default=1.0,
                   help="activation memory a batch may take above the loaded model")
    p.add_argument("--refer-dir", default=None, help="a REFER folder's first images (default: synthetic)")
    p.add_argument("--tokenizer", default=None, help="a full-size random GLaMM's tokenizer folder")
    p.add_argument("--device", default=None, help="default cpu")
    p.add_argument("--attn", default="eager", choices=list(ATTN_IMPLEMENTATIONS),
                   help="the LLM's attention kernel (eager: the official stack's; sdpa: no S x S matrix in "
                   "memory; flash: SDPA's FlashAttention backend, CUDA only)")
    p.add_argument("--sub-batch-bytes", default="auto",
                   type=lambda v: v if v == "auto" else None if v == "none"
                   else int(v), help="ground_many's budget for one padded LLM forward's eager attention "
                   "(auto: the last-level cache on a CPU; none: one forward per batch, as before; or bytes)")
    p.add_argument("--warmup", default="auto", choices=["auto", "short", "full"],
                   help="the untimed warm-up per (method, budget, B): full grounds every prompt once (every "
                   "shape of the timed pass; auto: full on CUDA), short one batch of at most 2")
    p.add_argument("--prefill", default=None, choices=list(PREFILLS), help=f"{PREFILL_HELP} (default auto)")
    p.add_argument("--capture", default=None, choices=list(CAPTURE_CHOICES),
                   help=f"{CAPTURE_HELP} (default auto)")
    p.add_argument("--dry-run", action="store_true",
                   help="the captured batch on a CPU: the tiny GLaMM, --prefill captured --capture "
                   "fused-eager (dynamo's eager backend), --batch-sizes 1 2 --budgets 64 --repeats 1, each "
                   "unless given")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="folder for throughput.csv")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options of ``argv``, each left out taking its default (``--dry-run``'s where given) and
    ``--warmup auto`` resolved for the device."""
    p = parser()
    a = p.parse_args(argv)
    fallback = DRY_RUN if a.dry_run else {"device": "cpu", "prefill": "auto", "capture": "auto",
                                          "batch_sizes": [1, 8, 32], "budgets": [192, 64], "repeats": 2}
    for key, value in fallback.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if min(a.batch_sizes) < 1 or min(a.budgets) < 1 or a.repeats < 1:
        p.error("--batch-sizes, --budgets and --repeats must be >= 1")
    a.batch_sizes = sorted(set(a.batch_sizes))
    if a.warmup == "auto":
        a.warmup = "full" if a.device.startswith("cuda") else "short"
    return a


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and with ``--out`` write) its table and the goals' verdicts."""
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    prefill = resolve_prefill(a.prefill, a.device)
    print(f"CPU: {cpu_flags()}; threads {torch.get_num_threads()}; device {a.device}; warm-up {a.warmup}; "
          f"prefill {prefill}" + (f" ({a.capture})" if prefill == "captured" else ""))
    from analysis.common.presentation.stage_plots import stages_frame

    results = [bench_model(m, a) for m in a.models]
    df = pd.concat([r[0] for r in results], ignore_index=True)
    stages = stages_frame(pd.concat([r[1] for r in results], ignore_index=True),
                          ("model", "method", "budget"))
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(df.drop(columns=["fit", "images"]).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"largest B within {a.memory_limit_gib:g} GiB of activations: a line through B = "
          f"{a.batch_sizes[0]} and {a.batch_sizes[-1]} (extrapolated); empty for a method that runs at batch "
          "1")
    for line in goal_lines(df):
        print(line)
    if a.out:  # both tables reach the folder together, when the run's transaction commits
        from litelvlm.runs.io import write_csv
        from litelvlm.runs.run_folder import RunFolder

        with RunFolder(a.out):
            write_csv(Path(a.out) / "throughput.csv", df)
            write_csv(Path(a.out) / "stages.csv", stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
