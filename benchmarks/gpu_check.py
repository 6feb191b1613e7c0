"""The Python steps of ``benchmarks/gpu_check.sh``: the environment, the card's rates, and the summary.

    python benchmarks/gpu_check.py env                  # versions and the device, for env.txt
    python benchmarks/gpu_check.py matmul OUT cuda      # OUT/matmul.json, rate.txt (TFLOP/s), gbps.txt (GB/s)
    python benchmarks/gpu_check.py summary OUT          # OUT/summary.md, summary.csv and runs.csv

The summary judges every target of ``benchmarks/gpu_check_targets.py`` (T1-T6: the whole call and its
stages beside their rooflines, LiteLVLM's speed-up over ``none``, the throughput, the gpu tests, the check's
time; P1-P6: the decoder-layer prefill) MET, MISSED or NOT MEASURED with the reason, as one table (target,
model, measure, measured value, threshold, verdict, the run read, a note) in ``summary.md`` and
``summary.csv``, and prints it; ``runs.csv`` and the end of ``summary.md`` hold every run's rows
(``benchmarks/gpu_check_runs.py``). Ratios are taken within one run on one card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))   # its siblings, also under PYTHONSAFEPATH=1
from gpu_check_runs import run_rows  # noqa: E402
from gpu_check_targets import VERDICTS, Verdict, all_targets  # noqa: E402


def cpu_name() -> str:
    """This machine's CPU: model name, cores and the flags that matter for these kernels (from
    /proc/cpuinfo)."""
    import os

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")),
                "unknown CPU")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    keep = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")]
    return f"{name}, {os.cpu_count()} cores ({' '.join(keep) or 'no avx2'})"


def card(device: str) -> str:
    """What ran the check: the CUDA card's name, or the CPU (a dry run)."""
    import torch

    return torch.cuda.get_device_name(
        0) if device == "cuda" and torch.cuda.is_available() else f"CPU: {cpu_name()}"


def env() -> str:
    """One line per version, the CPU and the device."""
    import platform

    import torch
    import transformers

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return "\n".join(
        [f"python {platform.python_version()} on {platform.platform()}", f"torch {torch.__version__}",
                      f"transformers {transformers.__version__}", f"cpu: {cpu_name()}", f"device: {cuda}"])


def matmul(out: Path, device: str) -> dict:
    """The device's matmul rate (bf16 on cuda, float32 on a CPU) and copy bandwidth (bytes read and written),
    written to ``out/matmul.json``, ``rate.txt`` and ``gbps.txt``."""
    import torch

    from litelvlm.cost.bound import GEMM_SIZE, copy_gbps, matmul_tflops

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rate, gbps = matmul_tflops(device, dtype), copy_gbps(device)
    rec = {"device": device, "name": card(device), "dtype": str(dtype)[6:], "gemm": GEMM_SIZE.get(device),
           "tflops": rate, "copy_gbps": gbps}
    out.mkdir(parents=True, exist_ok=True)
    (out / "matmul.json").write_text(json.dumps(rec, indent=1) + "\n")
    (out / "rate.txt").write_text(f"{rate:.6g}\n")
    (out / "gbps.txt").write_text(f"{gbps:.6g}\n")
    return rec


def targets_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """summary.csv: one row per target (the measured value as a number, NaN when not measured)."""
    return pd.DataFrame([{"target": v.target, "model": v.model, "measure": v.measure, "measured": v.measured,
                          "threshold": v.threshold, "verdict": v.verdict, "run": v.run, "note": v.note}
                         for v in verdicts])


def targets_markdown(verdicts: list[Verdict]) -> str:
    """The targets as a markdown table, the measured value with its unit, and the count of each verdict."""
    cells = ["| target | model | measure | measured | threshold | verdict | run | note |", "|---" * 8 + "|"]
    cells += [f"| {v.target} | {v.model} | {v.measure} | {v.shown()} | {v.threshold} | {v.verdict} | "
              f"{v.run} | {v.note.replace('|', '/')} |" for v in verdicts]
    counts = ", ".join(f"{sum(v.verdict == w for v in verdicts)} {w}" for w in VERDICTS)
    return "\n".join([*cells, "", counts + "."])


def overlap_section(out: Path) -> list[str]:
    """summary.md's lines on what eval-grounding's loader bought (``OUT/overlap/<model>/overlap.csv`` of
    benchmarks/bench_prepare_overlap.py): each model's table and ratio; none without such a file."""
    from analysis.common.presentation.markdown_table import to_markdown

    lines = []
    for path in sorted(out.glob("overlap/*/overlap.csv")):
        table = pd.read_csv(path)
        ratio = float(table["overlap_speedup"].iloc[0])
        lines += [f"{path.parent.name}: {ratio:.2f}x images/s overlapped over serial (each image's pixels "
                  "made ahead on the loader's threads, against in turn)", "",
                  to_markdown(table.drop(columns=["overlap_speedup"])), ""]
    if not lines:
        return []
    return ["## What eval-grounding's loader buys (benchmarks/bench_prepare_overlap.py)", "", *lines]


def summary(out: Path, now: float | None = None) -> str:
    """Write ``out/summary.md``, ``summary.csv`` (the targets) and ``runs.csv`` (every run's rows); return the
    markdown."""
    from analysis.common.presentation.markdown_table import to_markdown

    rate = json.loads((out / "matmul.json").read_text()) if (out / "matmul.json").is_file() else {}
    verdicts = all_targets(out, now)
    targets_table(verdicts).to_csv(out / "summary.csv", index=False)
    rows = run_rows(out)
    rows.to_csv(out / "runs.csv", index=False)
    head = (f"Ran on: {rate.get('name', '?')} (`{rate.get('device', '?')}`).\n\n"
            f"Matmul rate: {rate.get('tflops', float('nan')):.4g} TFLOP/s ({rate.get('dtype', '?')}, "
            f"{rate.get('name', '?')}; a {rate.get('gemm', '?')}-square GEMM); copy bandwidth "
            f"{rate.get('copy_gbps', float('nan')):.4g} GB/s (bytes read and written). Random weights: the "
            "times are the architectures', the masks mean nothing.")
    table = to_markdown(rows) if len(rows) else "(no validate run finished)"
    stack = []
    if (out / "fused_prefill" / "fused_prefill.csv").is_file():
        fused = pd.read_csv(out / "fused_prefill" / "fused_prefill.csv")
        stack = ["## GLaMM-7B's decoder stack alone (benchmarks/bench_fused_prefill.py)", "",
                 to_markdown(fused.drop(columns=["tflops", "copy_gbps", "device"], errors="ignore")), ""]
    text = "\n".join(["# GPU check", "", head, "", "## Targets", "", targets_markdown(verdicts), "", *stack,
                      *overlap_section(out), "## Every run (runs.csv)", "", table, ""])
    (out / "summary.md").write_text(text)
    return text


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("env", "matmul", "summary"):
        print("usage: gpu_check.py env | matmul OUT DEVICE | summary OUT", file=sys.stderr)
        return 2
    if argv[0] == "env":
        print(env())
    elif argv[0] == "matmul":
        print(json.dumps(matmul(Path(argv[1]), argv[2])))
    else:
        print(summary(Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
