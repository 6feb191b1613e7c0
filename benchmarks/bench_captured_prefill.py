"""Eager against captured LLM prefill (``litelvlm.llm.captured``) on this machine: the decoder-layer loop's
time (the paper's prefill definition) of ``none`` and LiteLVLM at one budget, both prefills timed round-robin
in one run.

    python benchmarks/bench_captured_prefill.py --model tiny-random:0 --budget 64 --repeats 5 --threads 1
    python benchmarks/bench_captured_prefill.py --device cuda --model sa2va-qwen2_5-vl-3b-random   # a GPU

Prints, per run, the median loop time of each prefill, eager / captured, and LiteLVLM's speed-up over ``none``
under each, with the CPU's flags (or the GPU's name) and the process's CPU seconds. On a CPU the capture is
``torch.compile`` (inductor, the first calls compile: untimed warm-ups); on CUDA a CUDA graph per length.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-random:0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--budget", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--refer-dir",
                   default=str(Path(__file__).resolve().parents[2] / "shared/data/coco128_refer"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from litelvlm.cost.timing import LayerLoopTimer
    from litelvlm.data.refer import load_refer
    from litelvlm.llm.captured import ATTR, install, uninstall
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(a.model, device=a.device)
    recs = load_refer(Path(a.refer_dir), None, split="all")
    prep = pipe.prepare(recs[0].image(), [recs[0].sentence])
    runs = [("none", None), ("litelvlm", a.budget)]
    times: dict = {}
    cpu0 = time.process_time()
    lm = pipe.language_model
    # one runner for the whole run: its captures are kept while the eager prefill is timed
    runner = install(lm)
    with torch.no_grad():
        for _ in range(a.warmup):  # the captured prefill's first calls capture (compile) each length
            for run in runs:
                pipe.ground(prep, *run)
        for _round in range(a.repeats):  # round-robin: every prefill of every run once per round
            for prefill in ("eager", "captured"):
                if prefill == "captured":
                    lm.__dict__[ATTR] = runner
                else:
                    uninstall(lm)
                for run in runs:
                    with LayerLoopTimer(pipe.language_model.layers, pipe.device) as t:
                        pipe.ground(prep, *run)
                    times.setdefault((prefill, run), []).append(t.ms)
    med = {k: statistics.median(v) for k, v in times.items()}
    where = torch.cuda.get_device_name(0) if a.device == "cuda" else cpu_flags()
    print(f"{a.model} on {a.device} ({where}); threads {torch.get_num_threads()}; {a.repeats} rounds")
    for run in runs:
        e, c = med[("eager", run)], med[("captured", run)]
        print(f"{run[0]}@{run[1] or 'all'}: eager {e:.1f} ms, captured {c:.1f} ms, eager/captured "
              f"{e / c:.2f}x")
    for prefill in ("eager", "captured"):
        print(f"litelvlm@{a.budget} over none, {prefill}: "
              f"{med[(prefill, runs[0])] / med[(prefill, runs[1])]:.2f}x")
    print(f"CPU seconds of the process: {time.process_time() - cpu0:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
