"""Where one warmed grounding call spends its time: ``torch.profiler`` over one call of a family's pipeline
from the image (preparation, encoders, prompt, ``ground``), the time by stage beside it, for each of the paths
compared (this project's measurement; the GPU check's first look at a call far above its roofline).

    python benchmarks/profile_call.py --dry-run --out /tmp/prof                     # a CPU, the tiny GLaMM
    python benchmarks/profile_call.py --device cuda --model glamm-7b-random \\
        --tokenizer ../shared/data/glamm_refseg_tokenizer --out results/prof          # a GPU

For each path (``--paths``: ``eager`` = the official eager prefill and encoders, ``captured`` = the captured
prefill and ``--encoders auto``), after ``--warmup`` untimed calls: one call under the time by stage
(``stages_<path>.json``) and one under the profiler with CPU and CUDA activities (``ops_<path>.txt``: the
30 operators of most self CPU time and, on CUDA, of most device time; ``trace_<path>.json.gz``: the Chrome
trace).
``summary.txt`` puts the stages of the paths side by side, with the CPU's flags or the GPU's name.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_layer_dtype import cpu_flags  # noqa: E402

from litelvlm.switches import PREFILLS as PATHS  # noqa: E402  (the prefill paths profiled)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="glamm-7b-random")
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--device", default="cuda")
    p.add_argument("--method", default="litelvlm")
    p.add_argument("--budget", type=int, default=192)
    p.add_argument("--attn", default="eager", help="the attention kernel (the official eager by default)")
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--refer-dir",
                   default=str(Path(__file__).resolve().parents[2] / "shared/data/coco128_refer"))
    p.add_argument("--out", required=True)
    p.add_argument("--dry-run", action="store_true", help="the tiny random GLaMM on the CPU, one warm-up")
    a = p.parse_args(argv)
    if a.dry_run:
        a.model, a.device, a.tokenizer, a.warmup, a.budget = "tiny-random:0", "cpu", None, 1, 64
    return a


def _pipeline(a: argparse.Namespace, path: str):
    from litelvlm.lvlm.captured_paths import install_paths
    from litelvlm.lvlm.numerics import Numerics
    from litelvlm.registry.families import load_pipeline

    kw = {"tokenizer": a.tokenizer} if a.tokenizer else {}
    pipe = load_pipeline(a.model, device=a.device, dtype=torch.bfloat16 if a.device == "cuda" else None,
                         numerics=Numerics(attn=a.attn), **kw)
    cpu = not str(a.device).startswith("cuda")
    if path == "captured":
        install_paths(pipe, "captured", "fused-eager" if cpu else "auto", "compile-eager" if cpu else "auto")
    return pipe


def _ops(prof, cuda: bool) -> str:
    avg = prof.key_averages()
    text = ["# by self CPU time", avg.table(sort_by="self_cpu_time_total", row_limit=30)]
    if cuda:
        text += ["# by device time", avg.table(sort_by="self_device_time_total", row_limit=30)]
    return "\n".join(text)


def profile_path(a: argparse.Namespace, path: str, out: Path) -> dict[str, float]:
    """The stages of one warmed call on ``path``; its profile's tables and trace under ``out``."""
    from litelvlm.cost.stages import time_stages
    from litelvlm.data.refer import load_refer

    rec = load_refer(Path(a.refer_dir), None, split="all")[0]
    image, sentence = rec.image(), rec.sentence
    pipe = _pipeline(a, path)
    budget = None if a.method == "none" else a.budget

    def call():
        return pipe.ground(pipe.prepare(image, [sentence]), a.method, budget)

    cuda = pipe.device.type == "cuda"
    with torch.no_grad():
        for _ in range(a.warmup):
            call()
        _, stages = time_stages(pipe, call)
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA]
                                                              if cuda else [])
        with torch.profiler.profile(activities=activities) as prof:
            call()
            if cuda:
                torch.cuda.synchronize()
    (out / f"stages_{path}.json").write_text(json.dumps(stages, indent=1))
    (out / f"ops_{path}.txt").write_text(_ops(prof, cuda))
    raw = out / f"trace_{path}.json"
    prof.export_chrome_trace(str(raw))
    with open(raw, "rb") as src, gzip.open(f"{raw}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return stages


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    where = torch.cuda.get_device_name(0) if str(a.device).startswith("cuda") else f"CPU ({cpu_flags()})"
    results = {}
    for path in a.paths:
        results[path] = profile_path(a, path, out)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    cols = list(next(iter(results.values())))
    lines = [f"{a.model} {a.method}@{a.budget} attn={a.attn} on {where}; ms of one warmed call by stage",
             "path       " + " ".join(f"{c:>9}" for c in cols)]
    lines += [f"{p:10} " + " ".join(f"{v[c]:9.1f}" for c in cols) for p, v in results.items()]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
