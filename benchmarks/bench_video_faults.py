"""Minor page faults and kernel / user CPU-seconds of the README's ``eval-video`` example, this checkout
against another.

Runs ``litelvlm eval-video --methods litelvlm,vispruner`` (the README's example; ``--args`` replaces the
arguments after ``--out``) in a fresh process per checkout and round, and reads each process's own resource
use from ``os.wait4`` (minor page faults, user and system CPU-seconds: counts and CPU time, not wall time, so
a machine busy with other work still compares). With ``--compare-src DIR`` (another checkout, e.g. ``git
archive`` of an earlier commit) its run joins each round, and the result tables of the two are compared byte
for byte. The target: kernel time under 10% of the process's CPU time; exit status 1 when it is missed. Run::

    python benchmarks/bench_video_faults.py [--compare-src DIR] [--rounds 1] [--args "--methods litelvlm ..."]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "--methods litelvlm,vispruner"
TABLES = ("summary.csv", "expressions.parquet", "comparisons.csv", "claims.csv")
TARGET = 0.10   # kernel share of CPU time


def run(src: Path, out: Path, args: list[str]) -> dict:
    """One ``eval-video`` process on the checkout ``src``: its minor faults, user and system CPU-seconds."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "litelvlm.cli", "eval-video", "--out", str(out), *args],
                                cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, use = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"eval-video failed on {src} (see {out.with_suffix('.log')})")
    return {"faults": use.ru_minflt, "user": use.ru_utime, "sys": use.ru_stime}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``) and its AVX-512 / AMX flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    return (f"{name or platform.machine()} "
            f"({', '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_tile') if f in flags)})")


def line(name: str, r: dict) -> str:
    cpu = r["user"] + r["sys"]
    return (f"{name:>14}: {r['faults'] / 1e6:8.2f} M minor faults, user {r['user']:7.1f} s, kernel "
            f"{r['sys']:7.1f} s ({r['sys'] / cpu:5.1%} of {cpu:.1f} CPU-s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare-src", type=Path, default=None, help="another checkout to run beside this one")
    p.add_argument("--rounds", type=int, default=1, help="rounds (each runs every checkout once)")
    p.add_argument("--args", default=EXAMPLE, help="eval-video's arguments after --out (default: "
                   f"{EXAMPLE!r})")
    a = p.parse_args()
    args = shlex.split(a.args)
    print(f"eval-video {' '.join(args)}; CPU: {cpu_name()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    sources = {"this checkout": ROOT, **({"compared": a.compare_src.resolve()} if a.compare_src else {})}
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.rounds):
            got = {name: run(src, Path(tmp) / f"{k}-{i}", args) for i,
                   (name, src) in enumerate(sources.items())}
            for name, r in got.items():
                print(f"round {k}: " + line(name, r))
            mine = got["this checkout"]
            missed |= mine["sys"] / (mine["user"] + mine["sys"]) >= TARGET
            if a.compare_src:
                old = got["compared"]
                same = all((Path(tmp) / f"{k}-0" / t).read_bytes() == (Path(tmp) / f"{k}-1" / t).read_bytes()
                           for t in TABLES)
                print(f"round {k}: compared / this checkout: faults "
                      f"{old['faults'] / max(mine['faults'], 1):.1f}x, kernel CPU-s "
                      f"{old['sys'] / max(mine['sys'], 1e-9):.1f}x, CPU-s "
                      f"{(old['user'] + old['sys']) / (mine['user'] + mine['sys']):.2f}x; tables "
                      f"{'byte-identical' if same else 'DIFFERENT'}")
                missed |= not same
    print(f"kernel time under {TARGET:.0%} of CPU time: {'MISSED' if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
