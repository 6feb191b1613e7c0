"""The Python steps of ``benchmarks/gpu_check.sh``: the environment, the card's rates, and the summary table.

    python benchmarks/gpu_check.py env                  # versions and the device, for env.txt
    python benchmarks/gpu_check.py matmul OUT cuda      # OUT/matmul.json, rate.txt (TFLOP/s), gbps.txt (GB/s)
    python benchmarks/gpu_check.py summary OUT          # OUT/summary.csv and summary.md from OUT/validate/*

The summary sets each model's prefill per attention kernel and prefill path (``paper_prefill_ms``: the
decoder-layer loop, the paper's definition) beside its roofline (``roofline_ms``: compute or weight read,
whichever is longer, plus attention; :func:`litelvlm.cost.bound.roofline_ms`) and judges the targets:
GLaMM-7B's unpruned captured prefill within 2x of its roofline at eager attention and 1.5x at SDPA;
LiteLVLM@192 over ``none`` at least 2.0x for GLaMM-7B at eager attention (the paper: 2.2x) and at least 90% of
the roofline's own ratio at SDPA and for Sa2VA-3B and UniPixel-3B; VideoGLaMM's unpruned prefill within 2x of
its roofline and per-frame LiteLVLM@64 at least 2.0x over ``none``; end to end (``stages.csv``'s total)
LiteLVLM@192 over ``none`` at least 1.3x for GLaMM-7B. Ratios are taken within one run on one card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: the targets (ratios within one run)
WITHIN_ROOFLINE = {"eager": 2.0, "sdpa": 1.5}
SPEEDUP_192 = 2.0
OF_ROOFLINE = 0.9
VIDEO_SPEEDUP_64 = 2.0
E2E_SPEEDUP_192 = 1.3
COLUMNS = ["model", "attn", "prefill", "llm_attn", "method", "budget", "seq_len", "paper_prefill_ms",
           "roofline_ms", "over_roofline", "speedup_vs_none", "roofline_speedup", "of_roofline_speedup",
           "arithmetic_limit_ms", "over_limit", "e2e_total_ms", "e2e_speedup_vs_none"]


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


def _run_rows(folder: Path):
    """One validate folder's rows (``<model>-<attn>-<prefill>``), with the speed-ups over none and the
    stages' end-to-end totals where ``stages.csv`` is there."""
    import pandas as pd

    model, attn, prefill = folder.name.rsplit("-", 2)
    df = pd.read_csv(folder / "validate.csv")
    base = df[df["method"] == "none"]
    def first(col):
        return (float(base[col].iloc[0]) if len(base) and col in base else float("nan"))
    df["speedup_vs_none"] = first("paper_prefill_ms") / df["paper_prefill_ms"]
    if "roofline_speedup" in df:
        df["of_roofline_speedup"] = df["speedup_vs_none"] / df["roofline_speedup"]
    if (folder / "stages.csv").is_file():
        st = pd.read_csv(folder / "stages.csv")
        total = st[st["stage"] == "total"].set_index(["method", "budget"])["ms"]
        df["e2e_total_ms"] = [total.get((m, b), float("nan")) for m, b in zip(df["method"], df["budget"],
                                                                                 strict=True)]
        none_total = df.loc[df["method"] == "none", "e2e_total_ms"]
        df["e2e_speedup_vs_none"] = (float(none_total.iloc[0]) if len(none_total) else float("nan")) / df[
            "e2e_total_ms"]
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    df.insert(0, "llm_attn", cfg.get("llm_attn_implementation", cfg.get("numerics", {}).get("attn", attn)))
    df.insert(0, "prefill", prefill)
    df.insert(0, "attn", attn)
    df.insert(0, "model", model)
    return df


def summary_rows(out: Path):
    """One row per (model, attention, prefill, method, budget) of ``out/validate/*/validate.csv``."""
    import pandas as pd

    folders = sorted((out / "validate").glob("*-*-*"))
    frames = [_run_rows(f) for f in folders if (f / "validate.csv").is_file()]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    for col in COLUMNS:
        if col not in rows:
            rows[col] = float("nan")
    return rows[COLUMNS]


def _pick(rows, model: str, attn: str, method: str, budget: int | None = None):
    r = rows[rows["model"].str.startswith(model) & (rows["attn"] == attn) & (rows["prefill"] == "captured")
             & (rows["method"] == method)]
    return r if budget is None else r[r["budget"] == budget]


def _judge(label: str, value: float, ok: bool, detail: str = "") -> str:
    if value != value:
        return f"- {label}: not measured"
    return f"- {label}: {value:.2f}{detail} {'**MET**' if ok else '**MISSED**'}"


def targets(rows) -> list[str]:
    """MET / MISSED lines for the targets (``not measured`` where a run is missing)."""
    def first(r, col):
        return (float(r[col].iloc[0]) if len(r) else float("nan"))
    lines = []
    for attn, bound in WITHIN_ROOFLINE.items():
        x = first(_pick(rows, "glamm", attn, "none"), "over_roofline")
        lines.append(_judge(f"GLaMM-7B none, captured, {attn}: within {bound:g}x of its roofline", x,
                            x <= bound, "x"))
    x = first(_pick(rows, "glamm", "eager", "litelvlm", 192), "speedup_vs_none")
    lines.append(_judge(f"GLaMM-7B LiteLVLM@192 over none, captured, eager: >= {SPEEDUP_192:g}x (paper 2.2x)",
                        x, x >= SPEEDUP_192, "x"))
    for model, attn in (("glamm", "sdpa"), ("sa2va", "eager"), ("sa2va", "sdpa"), ("unipixel", "eager"),
                        ("unipixel", "sdpa")):
        r = _pick(rows, model, attn, "litelvlm", 192)
        x, roof = first(r, "speedup_vs_none"), first(r, "roofline_speedup")
        share = x / roof if roof == roof else roof
        lines.append(_judge(f"{model} LiteLVLM@192 over none, captured, {attn}: >= {OF_ROOFLINE:.0%} of the "
                            "roofline's" + (f" {roof:.2f}x" if roof == roof else ""), share,
                            x >= OF_ROOFLINE * roof, f" of it ({x:.2f}x)"))
    x = first(_pick(rows, "videoglamm", "eager", "none"), "over_roofline")
    lines.append(_judge("VideoGLaMM none, captured, eager: within 2x of its roofline", x, x <= 2.0, "x"))
    x = first(_pick(rows, "videoglamm", "eager", "litelvlm", 64), "speedup_vs_none")
    lines.append(_judge(f"VideoGLaMM LiteLVLM@64 per frame (pool-min) over none, LLM prefill: >= "
                        f"{VIDEO_SPEEDUP_64:g}x", x, x >= VIDEO_SPEEDUP_64, "x"))
    x = first(_pick(rows, "glamm", "eager", "litelvlm", 192), "e2e_speedup_vs_none")
    lines.append(_judge(f"GLaMM-7B end to end (stages' total) LiteLVLM@192 over none, batch 1: >= "
                        f"{E2E_SPEEDUP_192:g}x (paper: 22% faster)", x, x >= E2E_SPEEDUP_192, "x"))
    return lines


def summary(out: Path) -> str:
    """Write ``out/summary.csv`` and ``out/summary.md``; return the markdown."""
    rate = json.loads((out / "matmul.json").read_text()) if (out / "matmul.json").is_file() else {}
    rows = summary_rows(out)
    rows.to_csv(out / "summary.csv", index=False)
    head = (f"Ran on: {rate.get('name', '?')} (`{rate.get('device', '?')}`).\n\n"
            f"Matmul rate: {rate.get('tflops', float('nan')):.4g} TFLOP/s ({rate.get('dtype', '?')}, "
            f"{rate.get('name', '?')}; a {rate.get('gemm', '?')}-square GEMM); copy bandwidth "
            f"{rate.get('copy_gbps', float('nan')):.4g} GB/s (bytes read and written). Random weights: the "
            "times are the architectures', the masks mean nothing.")
    from analysis.common.presentation.markdown_table import to_markdown

    table = to_markdown(rows) if len(rows) else "(no validate run finished)"
    stack = []
    if (out / "fused_prefill" / "fused_prefill.csv").is_file():
        import pandas as pd

        fused = pd.read_csv(out / "fused_prefill" / "fused_prefill.csv")
        stack = ["## GLaMM-7B's decoder stack alone (benchmarks/bench_fused_prefill.py)", "",
                 to_markdown(fused.drop(columns=["tflops", "copy_gbps", "device"], errors="ignore")), ""]
    text = "\n".join(["# GPU check", "", head, "", "## Targets", "", *targets(rows), "", *stack,
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
