"""The times the README and docs state, measured: every example command with "(about N s on 2 cores)" beside
it (the docs' after the README's, ``docs/commands.md`` first, each command once), in that order (the later
examples read the earlier ones' ``runs/``), each in a fresh process with an empty cache, its CPU-seconds
(user + system of the process and its children) and wall seconds; ``toy-train`` per step (two short runs,
their difference over the extra steps) and extrapolated to its default steps.

Prints one Markdown table, stated against measured, and the ratio of the measured CPU-seconds to the
statement: "off" where it is outside [1/1.5, 1.5] (the README then states the wrong time).

    python benchmarks/bench_stated_times.py [--only reversal,sink] [--toy-steps 10,40] [--dry-run]

``--dry-run`` lists the commands it would run, rewritten into a temporary folder, and runs none.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: an example and its statement: `litelvlm ...` (about N s|min on 2 cores)
STATED = re.compile(r"`((?:\.venv/bin/)?litelvlm [^`]+)`\s*\(about ([\d.]+) (s|min)\b[^`)]{0,40}?on 2 cores")
#: the first lines' demo: ``.venv/bin/litelvlm demo  # demo: about N s on 2 cores``
DEMO = re.compile(r"(\.venv/bin/litelvlm demo)\s+# demo: about ([\d.]+) (s|min) on 2 cores")
#: how many default steps ``toy-train`` takes (its ``--steps``)
TOY_STEPS = 4800


def documented_commands(root: Path = ROOT) -> list[tuple[str, list[str], float]]:
    """:func:`stated_commands` of the README, then of ``docs/commands.md`` (an example of every command, in
    the order to run them), then of the other ``docs/*.md`` in name order, each command once (its first
    statement)."""
    found, seen = [], set()
    page = root / "docs" / "commands.md"
    for path in [root / "README.md", page, *sorted(p for p in (root / "docs").glob("*.md") if p != page)]:
        for name, argv, seconds in stated_commands(path.read_text()):
            if tuple(argv) not in seen:
                seen.add(tuple(argv))
                found.append((name, argv, seconds))
    return found


def stated_commands(readme: str) -> list[tuple[str, list[str], float]]:
    """(name, argv after ``litelvlm``, stated seconds) of every timed example, in the README's order."""
    found = []
    for m in sorted([*DEMO.finditer(readme), *STATED.finditer(readme)], key=lambda m: m.start()):
        argv = shlex.split(m.group(1))[1:]
        seconds = float(m.group(2)) * (60 if m.group(3) == "min" else 1)
        name = argv[0] + (" --smoke" if "--smoke" in argv else "")
        found.append((name, argv, seconds))
    return found


def _cpu_flags() -> str:
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def run(argv: list[str], cwd: Path, env: dict) -> tuple[float, float, int]:
    """(CPU-seconds, wall seconds, exit status) of ``litelvlm ARGV`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "litelvlm.cli", *argv], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        print(f"  {' '.join(argv)}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}",
              file=sys.stderr)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall, done.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated example names to run (default: all)")
    p.add_argument("--toy-steps", default="10,40", help="the two short toy-train runs' step counts")
    p.add_argument("--dry-run", action="store_true", help="list the commands, run none")
    a = p.parse_args(argv)
    examples = documented_commands()
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    with tempfile.TemporaryDirectory(prefix="litelvlm-times-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        shared = ROOT.parent / "shared"
        if shared.exists():
            os.symlink(shared, Path(tmp) / "shared")   # `../shared/data` as the README's examples say it
        env = {**os.environ, "LITELVLM_CACHE": str(Path(tmp) / "cache"), "MPLBACKEND": "Agg",
               "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, flags: {_cpu_flags()}; "
              f"empty cache; one run each, in the README's order\n")
        print("| example | stated | measured CPU-s | wall s | measured / stated | |")
        print("|---|---|---|---|---|---|")
        for name, args, seconds in examples:
            if only and name.split()[0] not in only:
                continue
            if args[0] == "toy-train" and not a.dry_run:
                continue   # per step, below
            if a.dry_run:
                print(f"| `litelvlm {shlex.join(args)}` | {seconds:g} s | (dry run) | | | |")
                continue
            cpu, wall, code = run(args, work, env)
            ratio = cpu / seconds
            verdict = "failed" if code else "ok" if 1 / 1.5 <= ratio <= 1.5 else "**off**"
            print(f"| `litelvlm {shlex.join(args)}` | {seconds:g} s | {cpu:.1f} | {wall:.1f} | {ratio:.2f} | "
                  f"{verdict} |", flush=True)
        toy = next((seconds for _, args, seconds in examples if args[0] == "toy-train"), None)
        if toy and (not only or "toy-train" in only) and not a.dry_run:
            short, long = (int(s) for s in a.toy_steps.split(","))
            got = [run(["toy-train", "--steps", str(n), "--eval-every", str(n), "--out",
                        str(work / f"toy{n}")], work, env) for n in (short, long)]
            per_step = (got[1][0] - got[0][0]) / (long - short)
            fixed = got[0][0] - short * per_step
            total = fixed + TOY_STEPS * per_step
            print(f"| `litelvlm toy-train` | {toy / 60:g} min | {per_step:.2f} a step; {fixed:.0f} fixed; "
                  f"{TOY_STEPS} steps: {total / 60:.1f} min (one evaluation) | | {total / toy:.2f} | "
                  f"{'ok' if 1 / 1.5 <= total / toy <= 1.5 else '**off**'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
