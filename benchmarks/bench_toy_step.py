"""Toy CLIP training step: the plain step against the one ``litelvlm toy-train`` takes.

Both train the same model (the default ``toy-train`` architecture, same initial weights) on the
same batches of the default recipe (64 scenes, 3 positives, 7 hard negatives each), timed
round-robin in one run so that a slow spell of a shared machine hits both alike:

* ``plain``: ``CLIPModel`` with transformers' default attention (sdpa), every distinct caption
  padded to the batch's longest, AdamW one tensor at a time;
* ``toy-train``: eager attention (``--attention eager``), distinct captions encoded in two
  length buckets (``clip_logits(..., buckets=2)``), fused AdamW.

It also times the batch sampler alone (drawn in the training process between steps). Prints
milliseconds per step and the paired ratio's median and spread (target: the toy-train step >= 1.2x
faster; MISSED when the median misses it).

    python benchmarks/bench_toy_step.py [--threads 2] [--scenes 600] [--repeats 40]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import paired_ratios, report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    # long by design: one linear benchmark script (options, setup, timed rounds, report)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--scenes", type=int, default=600, help="training scenes rendered for the batches")
    p.add_argument("--batches", type=int, default=8, help="distinct batches cycled through")
    p.add_argument("--repeats", type=int, default=40, help="timed steps of each variant (after 3 warm-ups)")
    args = p.parse_args(argv)

    from transformers import AutoModel

    from litelvlm.clip.random_init import hf_config, write_clip_tokenizer
    from litelvlm.cost.timing import interleaved_wall_ms
    from litelvlm.toy.loss import clip_logits, contrastive_loss
    from litelvlm.toy.model import arch_of, sharpen_attention_init, sincos_position_init
    from litelvlm.toy.options import ToyTrainArgs
    from litelvlm.toy.samplers import BatchSampler
    from litelvlm.toy.scene_sets import TRAIN_SEED, build_scenes

    torch.set_num_threads(args.threads)
    a = ToyTrainArgs(threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tok = write_clip_tokenizer(Path(tmp) / "tok")
    pixels, scenes = build_scenes(TRAIN_SEED, args.scenes, a.render_size, a.image_size, "scenes", 0)
    sampler = BatchSampler(scenes, pixels, tok, a)
    rng = np.random.default_rng(0)
    for _ in range(20):  # fill the sampler's caches, as after the first steps of a run
        sampler(rng)
    sample_ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        sampler(rng)
        sample_ms.append((time.perf_counter() - t0) * 1e3)
    batches = [sampler(rng) for _ in range(args.batches)]

    config = hf_config(arch_of(a))

    def variant(attention: str, fused: bool, buckets: int):
        torch.manual_seed(a.seed)
        model = AutoModel.from_config(copy.deepcopy(config), attn_implementation=attention)
        sharpen_attention_init(model, a.attn_init)
        sincos_position_init(model)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), eps=1e-6, fused=fused)
        state = {"i": 0}

        def step():
            px, (ids, mask), owner, truth = batches[state["i"] % len(batches)]
            state["i"] += 1
            with torch.enable_grad():
                loss = contrastive_loss(clip_logits(model, px, ids, mask, buckets=buckets), owner, truth)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
            return loss.item()

        return step

    fns = {"plain": variant("sdpa", False, 1), "toy-train": variant("eager", True, 2)}
    first = {k: fn() for k, fn in fns.items()}  # same weights, same batch: the same loss
    times = interleaved_wall_ms(fns, "cpu", warmup=3, repeats=args.repeats)
    plain, fast = times["plain"]["median"], times["toy-train"]["median"]
    print(f"threads {args.threads}, batch {a.batch_size} scenes x {a.positives} positives x "
          f"(1 + {a.hard_negatives}) captions; first-step loss plain {first['plain']:.5f}, "
          f"toy-train {first['toy-train']:.5f}")
    print(f"{'variant':<12}{'median ms/step':>16}{'min':>8}{'max':>8}")
    for k, t in times.items():
        print(f"{k:<12}{t['median']:>16.1f}{t['min']:>8.1f}{t['max']:>8.1f}")
    print(f"batch sampler: {statistics.median(sample_ms):.1f} ms per batch (median of 20)")
    # the ratio that counts: one per back-to-back pair (A B, B A, ...), median and spread
    ratios = paired_ratios(fns["plain"], fns["toy-train"], repeats=max(3, args.repeats // 4), warmup=1)
    print(f"(unpaired medians: plain/toy-train {plain / fast:.2f}x)")
    print(report("toy-train step speedup (plain / toy-train)", ratios, target=1.2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
