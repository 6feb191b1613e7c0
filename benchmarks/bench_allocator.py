"""Minor page faults and CPU-seconds of one ``litelvlm`` command with glibc keeping freed memory (the
command's default) against glibc's own behaviour (``LITELVLM_MALLOC=system``), its tables compared byte for
byte.

Runs ``litelvlm eval-grounding`` on the tiny random GLaMM (``--args`` replaces the arguments after ``--out``)
in a fresh process per setting and round, in alternation, and reads each process's own resource use from
``os.wait4`` (counts and CPU time, not wall time, so a machine busy with other work still compares). The
target: the kept setting takes less CPU time and writes byte-identical tables; exit status 1 when it does not.
Run::

    python benchmarks/bench_allocator.py [--rounds 2] [--args "--model tiny-random:0 ..."]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video_faults import cpu_name, line  # noqa: E402

EXAMPLE = ("--refer-dir ../shared/data/coco128_refer --limit-images 4 --model tiny-random:0 "
           "--methods none,litelvlm,fastv --budgets 64 --n-boot 50 --quiet")
TABLES = ("summary.csv", "grounding.parquet", "comparisons.csv", "claims.csv")


def run(setting: str, out: Path, args: list[str]) -> dict:
    """One ``eval-grounding`` process under ``LITELVLM_MALLOC=setting`` (its own fresh cache folder): its
    minor faults, user and system CPU-seconds."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", MPLBACKEND="Agg", LITELVLM_MALLOC=setting,
               LITELVLM_CACHE=str(out) + "-cache")
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "litelvlm.cli", "eval-grounding", "--out", str(out),
                                 *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, use = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"eval-grounding failed under LITELVLM_MALLOC={setting} "
                         f"(see {out.with_suffix('.log')})")
    return {"faults": use.ru_minflt, "user": use.ru_utime, "sys": use.ru_stime}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="rounds (both settings each, alternating)")
    p.add_argument("--args", default=EXAMPLE,
                   help=f"eval-grounding's arguments after --out (default: {EXAMPLE!r})")
    a = p.parse_args()
    args = shlex.split(a.args)
    print(f"eval-grounding {' '.join(args)}; CPU: {cpu_name()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.rounds):
            order = ("system", "keep") if k % 2 == 0 else ("keep", "system")
            got = {s: run(s, Path(tmp) / f"{k}-{s}", args) for s in order}
            for s in ("system", "keep"):
                print(f"round {k}: " + line(s, got[s]))
            old, new = got["system"], got["keep"]
            ratio = (old["user"] + old["sys"]) / (new["user"] + new["sys"])
            same = all((Path(tmp) / f"{k}-system" / t).read_bytes()
                       == (Path(tmp) / f"{k}-keep" / t).read_bytes() for t in TABLES)
            print(f"round {k}: system / keep: faults {old['faults'] / max(new['faults'], 1):.1f}x, CPU-s "
                  f"{ratio:.2f}x; tables {'byte-identical' if same else 'DIFFERENT'}")
            missed |= ratio <= 1.0 or not same
    print(f"keep: less CPU time and the same tables: {'MISSED' if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
