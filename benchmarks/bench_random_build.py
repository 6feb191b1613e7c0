"""Random full-size model build: the code of an older revision (per-module initialisation) against this one
(fast fill), in ONE run on one machine.

Each variant runs in its own child process with an empty ``LITELVLM_CACHE``: the first use of the random
preset through its family's real entry point (build, write in the checkpoint layout, manifest:
``sa2va_folder`` / ``unipixel_folder`` / ``qwen_folder`` / GLaMM's cached folder) and, with ``--load``,
loading it back (``load_sa2va``...). The old variant imports the package as ``git archive <rev>`` exports it.
Per variant: wall seconds of each phase, user and system CPU-seconds and peak RSS of the child
(``getrusage``), the wall and CPU-seconds spent in the fill, the writing of the shards and the manifest
(``*_wall``, ``*_cpu``: the rest of a phase is single-threaded), and the CPU model and flags. ``--no-write``
times the build alone (no checkpoint written: where only the timing is wanted; the round trip is proven by the
tests).

    python benchmarks/bench_random_build.py [--model sa2va-qwen2_5-vl-3b-random] [--old-rev 45c0a36]
        [--variants old,new] [--load] [--no-write] [--threads N]

Memory: a variant holds the model once (bf16 3B: about 7.5 GB), the old loader about twice; each child is
started only when /proc/meminfo's MemAvailable exceeds ``--min-free-gb``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: run inside the child: the first use of the preset (and optionally its load), phase by phase, as JSON on
#: stdout
CHILD = r"""
import json, sys, time
model, load, no_write = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
t0 = time.perf_counter()
family = model.split("-")[0]
if family == "sa2va":
    from litelvlm.sa2va.checkpoint import build_sa2va as build, load_sa2va as loader, sa2va_folder as folder
    from litelvlm.sa2va.card import CARD
elif family == "unipixel":
    from litelvlm.unipixel.checkpoint import build_unipixel as build, load_unipixel as loader, unipixel_folder as folder
    from litelvlm.unipixel.card import CARD
elif family == "glamm":  # glamm-7b-random: GLaMM-RefSeg's slow tokenizer from the shared data (argv[4])
    import torch
    from litelvlm.glamm.build import build_glamm
    from litelvlm.glamm.pipeline import GlammPipeline
    from litelvlm.glamm.random_model import random_model_dir
    def build(preset, seed):
        return build_glamm("glamm-7b", dtype=torch.bfloat16, seed=seed, init_on_device=True)
    def folder(model):
        return random_model_dir("glamm-7b", 0, sys.argv[4])
    def loader(model):
        return GlammPipeline.from_model_string(model, tokenizer=sys.argv[4], dtype=torch.bfloat16)
    CARD = None
else:
    from litelvlm.qwen.checkpoint import build_qwen as build, load_qwen as loader, qwen_folder as folder
    CARD = None
phases = {"import": time.perf_counter() - t0}
import resource
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def timed(key, fn):
    def wrapper(*a, **k):
        w, c = time.perf_counter(), cpu()
        try:
            return fn(*a, **k)
        finally:
            phases[key + "_wall"] = phases.get(key + "_wall", 0.0) + time.perf_counter() - w
            phases[key + "_cpu"] = phases.get(key + "_cpu", 0.0) + cpu() - c
    return wrapper
import importlib
for name in ("litelvlm.runs.checksums", "litelvlm.models.safetensors_stream", "safetensors.torch"):
    try:
        importlib.import_module(name)
    except ImportError:  # the old revision has no streaming writer
        pass
# the shards as a whole (the new code writes them side by side in threads: its per-file calls would overlap)
originals = {"fast_fill": "fill", "save_shards": "write", "save_file": "write", "folder_manifest": "manifest"}
for mod in [m for n, m in list(sys.modules.items()) if n.startswith(("litelvlm", "safetensors.torch")) and m]:
    for attr, key in originals.items():
        if callable(getattr(mod, attr, None)):
            setattr(mod, attr, timed(key, getattr(mod, attr)))
t = time.perf_counter()
if no_write:
    preset = CARD.preset(model) if CARD else model.split("-")[-2]
    c = cpu()
    built = build(preset, seed=0)
    phases["build"] = time.perf_counter() - t
    phases["build_cpu"] = cpu() - c
    del built
else:
    c = cpu()
    where = folder(model)
    phases["build+write_cpu"] = cpu() - c
    phases["build+write"] = time.perf_counter() - t
    size = sum(f.stat().st_size for f in where.iterdir() if f.is_file())
    phases["folder_gb"] = round(size / 1e9, 2)
    if load:
        t = time.perf_counter()
        loaded = loader(model)
        phases["load"] = time.perf_counter() - t
        del loaded
import litelvlm
print("FROM " + json.dumps(litelvlm.__file__))
print("PHASES " + json.dumps(phases))
"""  # noqa: E501


def cpu_info() -> tuple[str, str]:
    """(model name, the flags that matter for these kernels) of this machine's CPU."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    keep = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "sha_ni")]
    return name, " ".join(keep)


def mem_available_gb() -> float:
    for ln in Path("/proc/meminfo").read_text().splitlines():
        if ln.startswith("MemAvailable:"):
            return int(ln.split()[1]) / (1 << 20)
    return float("inf")


def export_rev(rev: str, dest: Path) -> Path:
    """``litelvlm/`` as revision ``rev`` holds it, under ``dest`` (for PYTHONPATH)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "litelvlm"], check=True,
                             capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_variant(name: str, pythonpath: Path, args) -> dict:
    """One child: its phases, wall, user and system CPU-seconds and peak RSS."""
    with tempfile.TemporaryDirectory(prefix=f"randbuild-{name}-", dir=args.tmp) as cache:
        env = dict(os.environ, PYTHONPATH=str(pythonpath), LITELVLM_CACHE=cache, HF_HUB_OFFLINE="1")
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, args.model, "1" if args.load else "0",
                               "1" if args.no_write else "0", args.tokenizer], env=env,
                              stdout=subprocess.PIPE, text=True,
                              # not the checkout: ``python -c`` puts the working folder first on sys.path
                              cwd=cache)
        where = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("FROM "))[5:])
        if Path(where).resolve() != (pythonpath / "litelvlm" / "__init__.py").resolve():
            sys.exit(f"variant {name} imported {where}, not the code under {pythonpath}")
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"variant {name} failed with status {proc.returncode}")
    phases = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("PHASES "))[7:])
    return {"variant": name, "wall_s": round(wall, 1), "user_s": round(after.ru_utime - before.ru_utime, 1),
            "sys_s": round(after.ru_stime - before.ru_stime, 1),
            "peak_rss_gb": round(after.ru_maxrss / (1 << 20), 2),
            **{k: round(v, 1) if isinstance(v, float) else v for k, v in phases.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="sa2va-qwen2_5-vl-3b-random",
                    help="a random sa2va/unipixel/qwen preset, or glamm-7b-random")
    ap.add_argument("--old-rev", default="45c0a36", help="the revision whose code is the old variant")
    ap.add_argument("--variants", default="old,new", help="which to run, in this order (old, new)")
    ap.add_argument("--load", action="store_true", help="also load the written folder back (first use)")
    ap.add_argument("--no-write", action="store_true", help="time the build alone: no checkpoint is written")
    ap.add_argument("--tokenizer", default=str(ROOT.parent / "shared" / "data" / "glamm_refseg_tokenizer"),
                    help="glamm-7b-random's slow tokenizer folder")
    ap.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of the children (0: unset)")
    ap.add_argument("--min-free-gb", type=float, default=17.0, help="start a child only above this "
                    "MemAvailable")
    ap.add_argument("--tmp", default=None, help="folder for the children's caches (default: the system's)")
    args = ap.parse_args(argv)
    name, flags = cpu_info()
    print(f"CPU: {name}; {os.cpu_count()} cores; flags: {flags}")
    print(f"model {args.model}; load {args.load}; no-write {args.no_write}; old = {args.old_rev}, new = "
          "working tree")
    rows = []
    with tempfile.TemporaryDirectory(prefix="randbuild-old-src-") as src:
        for variant in args.variants.split(","):
            free = mem_available_gb()
            if free < args.min_free_gb:
                sys.exit(f"only {free:.1f} GB available (--min-free-gb {args.min_free_gb}): not starting "
                         f"{variant}")
            path = export_rev(args.old_rev, Path(src)) if variant == "old" else ROOT
            rows.append(run_variant(variant, path, args))
            print(json.dumps(rows[-1]), flush=True)
    if len(rows) == 2:
        old, new = rows
        for key in ("wall_s", "user_s", "sys_s"):
            print(f"{key}: old {old[key]} / new {new[key]} = {old[key] / max(new[key], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
