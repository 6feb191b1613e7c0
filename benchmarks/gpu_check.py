"""The Python steps of ``benchmarks/gpu_check.sh``: the environment, the card's matmul rate, and the summary
table.

    python benchmarks/gpu_check.py env                  # versions and the device, for env.txt
    python benchmarks/gpu_check.py matmul OUT cuda      # OUT/matmul.json and OUT/rate.txt (TFLOP/s, bf16 on
    cuda) python benchmarks/gpu_check.py summary OUT          # OUT/summary.csv and OUT/summary.md from
    OUT/validate/*

The summary sets each model's eager and captured prefill (``paper_prefill_ms``: the decoder-layer loop, the
paper's definition) beside its arithmetic limit (``arithmetic_limit_ms``: 2 x decoder parameters x tokens /
the measured rate) and judges the targets of the captured prefill: GLaMM-7B's unpruned prefill within 2x of
its limit, and LiteLVLM@192 over ``none`` at least 2.0x (the paper: 2.2x). Ratios are taken within one run on
one card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: the captured prefill's targets: GLaMM-7B within this factor of its limit; LiteLVLM@192 over none at least
#: this
WITHIN_LIMIT = 2.0
SPEEDUP_192 = 2.0
COLUMNS = ["model", "prefill", "method", "budget", "seq_len", "tflop", "paper_prefill_ms",
           "arithmetic_limit_ms", "over_limit", "speedup_vs_none", "flops_ratio_vs_none", "captured_vs_eager"]


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
    """The device's matmul rate (bf16 on cuda, float32 on a CPU), written to ``out/matmul.json`` and
    ``rate.txt``."""
    import torch

    from litelvlm.cost.bound import GEMM_SIZE, matmul_tflops

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rate = matmul_tflops(device, dtype)
    rec = {"device": device, "name": card(device), "dtype": str(dtype)[6:], "gemm": GEMM_SIZE.get(device),
           "tflops": rate}
    out.mkdir(parents=True, exist_ok=True)
    (out / "matmul.json").write_text(json.dumps(rec, indent=1) + "\n")
    (out / "rate.txt").write_text(f"{rate:.6g}\n")
    return rec


def summary_rows(out: Path, tflops: float = float("nan")):
    """One row per (model, prefill, method, budget) of ``out/validate/<model>-<prefill>/validate.csv``;
    ``tflop``: the FLOPs of its arithmetic limit (2 x decoder parameters x tokens) at the rate ``tflops``."""
    import pandas as pd

    frames = []
    for folder in sorted((out / "validate").glob("*-*")):
        if not (folder / "validate.csv").is_file():
            continue
        model, prefill = folder.name.rsplit("-", 1)
        df = pd.read_csv(folder / "validate.csv")
        base = df[df["method"] == "none"]
        df["speedup_vs_none"] = float(base["paper_prefill_ms"].iloc[0]) / df["paper_prefill_ms"] if len(
            base) else float("nan")
        if (folder / "ratios.csv").is_file():
            r = pd.read_csv(folder / "ratios.csv")
            if "paper_def_flops_speedup" in r:
                df = df.merge(r[["method", "budget", "paper_def_flops_speedup"]], on=["method", "budget"],
                              how="left")
                df["flops_ratio_vs_none"] = df.pop("paper_def_flops_speedup").fillna(1.0)
        df.insert(0, "prefill", prefill)
        df.insert(0, "model", model)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    for col in COLUMNS:
        if col not in rows:
            rows[col] = float("nan")
    rows["tflop"] = rows["arithmetic_limit_ms"] * tflops / 1e3
    eager = rows[rows["prefill"] == "eager"].set_index(["model", "method", "budget"])["paper_prefill_ms"]
    key = list(zip(rows["model"], rows["method"], rows["budget"], strict=True))
    rows["captured_vs_eager"] = [eager.get(k, float("nan")) / t if p == "captured" else float("nan")
                                 for k, t,
                                 p in zip(key, rows["paper_prefill_ms"], rows["prefill"], strict=True)]
    return rows[COLUMNS]


def targets(rows) -> list[str]:
    """MET / MISSED lines for the captured prefill's targets (``not measured`` where a run is missing)."""
    lines = []
    cap = rows[rows["prefill"] == "captured"]
    glamm = cap[cap["model"].str.startswith("glamm") & (cap["method"] == "none")]
    if len(glamm):
        x = float(glamm["over_limit"].iloc[0])
        lines.append(f"- GLaMM unpruned prefill within {WITHIN_LIMIT:g}x of its arithmetic limit: {x:.2f}x "
                     f"{'**MET**' if x <= WITHIN_LIMIT else '**MISSED**'}")
    else:
        lines.append("- GLaMM unpruned prefill within 2x of its arithmetic limit: not measured")
    for model in sorted(cap["model"].unique()):
        r = cap[(cap["model"] == model) & (cap["method"] == "litelvlm") & (cap["budget"] == 192)]
        if len(r):
            x = float(r["speedup_vs_none"].iloc[0])
            lines.append(f"- {model}: LiteLVLM@192 over none (captured, decoder-layer loop) {x:.2f}x (target "
                         f">= {SPEEDUP_192:g}x; paper 2.2x) "
                         f"{'**MET**' if x >= SPEEDUP_192 else '**MISSED**'}")
    return lines


def summary(out: Path) -> str:
    """Write ``out/summary.csv`` and ``out/summary.md``; return the markdown."""
    rate = json.loads((out / "matmul.json").read_text()) if (out / "matmul.json").is_file() else {}
    rows = summary_rows(out, float(rate.get("tflops", "nan")))
    rows.to_csv(out / "summary.csv", index=False)
    head = (f"Ran on: {rate.get('name', '?')} (`{rate.get('device', '?')}`).\n\n"
            f"Matmul rate: {rate.get('tflops', float('nan')):.4g} TFLOP/s ({rate.get('dtype', '?')}, "
            f"{rate.get('name', '?')}; a {rate.get('gemm', '?')}-square GEMM)")
    from analysis.common.markdown_table import to_markdown

    table = to_markdown(rows) if len(rows) else "(no validate run finished)"
    text = "\n".join(
        ["# GPU check", "", head, "", "## Targets of the captured prefill", "", *targets(rows), "",
                      "## Every run", "", table, ""])
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
