"""How fast every command refuses: ``--help``, a missing input path and an unknown method name, as whole
processes.

Each case runs ``python -m litelvlm.cli ...`` ``--repeats`` times (round robin over the cases) and reads the
child's CPU time (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``), which a busy machine inflates
far less than wall time. The target: every case exits 2 (0 for ``--help``) in under 1 s of CPU. Prints the
median and the maximum per case, MET or MISSED, and the CPU's flags that matter for the project's timings.

    python benchmarks/bench_fast_failure.py --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
MISSING = "/nonexistent/litelvlm-bench"

#: (command, extra arguments) of each case, the expected exit status
CASES: list[tuple[str, list[str], int]] = []
for command, out in (("reversal", True), ("sink", True), ("retention", True), ("eval-grounding", True),
                     ("importance", True), ("efficiency", True), ("validate", True), ("positions", True),
                     ("eval-video", True), ("demo", True), ("figures", True), ("select", False)):
    CASES.append((command, ["--help"], 0))
    where = ["--out", "/tmp/litelvlm-bench-out"] if out else []
    missing = {"figures": ["--results", MISSING], "select": ["--image", MISSING, "--text", "a"],
               "eval-video": ["--video-dir", MISSING], "efficiency": ["--arch", "no-such-arch"],
               "demo": ["--model", MISSING]}.get(command, ["--refer-dir", MISSING])
    CASES.append((command, [*where, *missing], 2))
    method = {"select": ["--method", "no-such-method", "--image", MISSING, "--text", "a"],
              "importance": ["--method-signals", "no-such-method"]}.get(command,
                                                                        ["--methods", "no-such-method"])
    if command not in ("reversal", "sink", "demo", "figures"):
        CASES.append((command, [*where, *method], 2))


def cpu_seconds(argv: list[str], expect: int) -> float:
    """The CPU time of one whole process running ``litelvlm argv`` (it must exit with ``expect``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    rc = subprocess.run([sys.executable, "-m", "litelvlm.cli", *argv], cwd=ROOT,
                        capture_output=True).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != expect:
        raise SystemExit(f"litelvlm {' '.join(argv)}: exit {rc}, expected {expect}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_flags() -> str:
    """The flags of this CPU that decide the project's dtype choices (AMX, AVX-512 bf16, AVX2)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
                    if f in flags) or "none of amx/avx"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    times: dict[int, list[float]] = {i: [] for i in range(len(CASES))}
    for _ in range(a.repeats):
        for i, (command, extra, expect) in enumerate(CASES):
            times[i].append(cpu_seconds([command, *extra], expect))
    print(f"CPU flags: {cpu_flags()}; {a.repeats} round(s); target < {TARGET_S:.1f} s CPU per refusal")
    worst = 0.0
    for i, (command, extra, _) in enumerate(CASES):
        med, top = statistics.median(times[i]), max(times[i])
        worst = max(worst, top)
        print(f"{command:15s} {' '.join(extra)[:60]:60s} median {med:.2f} s  max {top:.2f} s")
    print(f"worst case {worst:.2f} s CPU: {'MET' if worst < TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
