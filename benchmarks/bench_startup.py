"""Startup benchmark: a warm study rerun against the bare import of the libraries it computes with.

Details: docs/testing.md (``benchmarks.bench_startup``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired import report  # noqa: E402

DATA = Path(os.environ.get("LITELVLM_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: the target for the warm reversal's overhead over the floor, seconds
OVERHEAD_GOAL_S = 2.0
FLOOR = "import torch, pandas, scipy.stats, pyarrow.parquet"
MODEL_FLOOR = "import torch, pandas, scipy.stats, pyarrow.parquet, transformers.models.clip.modeling_clip"


def timed(argv: list[str], env: dict, expect: int = 0) -> float:
    """Wall seconds of one process (exits if its status is not ``expect``)."""
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != expect:
        sys.exit(f"{' '.join(argv)} exited {done.returncode} (expected {expect}):\n{done.stderr[-2000:]}")
    return wall


def cli(src: Path) -> list[str]:
    """The ``litelvlm`` command of a checkout."""
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(src)!r}); from litelvlm.cli import "
            "main; sys.exit(main(sys.argv[1:]))"]


def summary(name: str, values: list[float]) -> str:
    return f"{name}: median {statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="tiny336-random")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--limit-sentences", type=int, default=40)
    p.add_argument("--compare-src", type=Path, default=None, help="another checkout to pair with this one")
    a = p.parse_args()
    refer = DATA / "coco128_refer"
    if not (refer / "instances.json").exists():
        sys.exit(f"needs the shared data at {DATA} (set LITELVLM_SHARED_DATA)")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LITELVLM_CACHE": str(Path(tmp) / "cache"), "OMP_NUM_THREADS": "1"}
        common = ["--model", a.model, "--refer-dir", str(refer), "--limit-sentences", str(a.limit_sentences)]
        n = iter(range(10**6))

        def study(src: Path, command: str) -> float:
            return timed([*cli(src), command, *common, "--out", f"{tmp}/{command}{next(n)}"], env)

        study(ROOT, "reversal")  # cold: fills the caches and saves the model's description
        study(ROOT, "sink")
        if a.compare_src:
            study(a.compare_src, "reversal")
        runs = {
            "floor": lambda: timed([sys.executable, "-c", FLOOR], env),
            "warm reversal": lambda: study(ROOT, "reversal"),
            "model floor": lambda: timed([sys.executable, "-c", MODEL_FLOOR], env),
            "warm sink": lambda: study(ROOT, "sink"),
            "bad argument": lambda: timed([*cli(ROOT), "reversal", "--limit-sentences", "0"], env, expect=2),
        }
        if a.compare_src:
            runs["warm reversal (compared)"] = lambda: study(a.compare_src, "reversal")
        times: dict[str, list[float]] = {k: [] for k in runs}
        names = list(runs)
        for r in range(a.rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                times[k].append(runs[k]())
    print(f"{a.rounds} interleaved rounds, model {a.model}, {a.limit_sentences} sentences, 1 thread")
    for k, v in times.items():
        print("  " + summary(k, v))
    over = [w - f for w, f in zip(times["warm reversal"], times["floor"])]
    med = statistics.median(over)
    print(f"warm reversal over the floor: median {med:.2f} s [{min(over):.2f}-{max(over):.2f}] "
          f"(includes the study's own work); target <= {OVERHEAD_GOAL_S:g} s: "
          f"{'met' if med <= OVERHEAD_GOAL_S else 'MISSED'}")
    sink_over = [w - f for w, f in zip(times["warm sink"], times["model floor"])]
    print(f"warm sink over the model floor: median {statistics.median(sink_over):.2f} s "
          f"[{min(sink_over):.2f}-{max(sink_over):.2f}]")
    whole = statistics.median(times["warm reversal"])
    print(f"whole warm reversal: {whole:.2f} s; target <= {OVERHEAD_GOAL_S:g} s of startup as a whole "
          f"process: {'met' if whole <= OVERHEAD_GOAL_S else 'MISSED'} (the floor alone is "
          f"{statistics.median(times['floor']):.2f} s here)")
    if a.compare_src:
        ratios = [c / w for c, w in zip(times["warm reversal (compared)"], times["warm reversal"])]
        print(report(f"warm reversal, {a.compare_src} / this checkout", ratios))


if __name__ == "__main__":
    main()
