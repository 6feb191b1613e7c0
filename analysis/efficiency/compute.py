"""``litelvlm efficiency``: FLOPs (analytic and FlopCounterMode), prefill time, CUDA time and
activation memory of a family's model per pruning method and visual-token budget.

What is measured is the family's pipeline (the one ``eval-grounding`` runs) with random weights, built from
the family's preset of ``--arch`` (or ``--model``) by the family's cost description
(:class:`litelvlm.cost.FamilyCost`, reached through its card: ``analysis.efficiency.arch``), in the parts it
declares. FLOPs are always counted on the ``meta`` device (the full 7B model needs no memory;
``analysis.efficiency.count``); so is the activation memory of every LLM prefill (``llm_act_mb_meta``: bytes
of the tensors a forward creates, at their peak). Without ``--flops-only`` every part is also run with random
weights on ``--device`` and timed (median wall time after warm-ups; summed CUDA kernel time on GPUs) and its
peak activation memory measured, once per attention implementation in ``--attn``
(``analysis.efficiency.measure``).
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from analysis.common.measures.amdahl import amdahl_frame, amdahl_lines, llm_lengths, write_amdahl
from analysis.common.measures.flops import fit_paper_text_tokens
from analysis.common.measures.paper_efficiency import DEFINITIONS as PAPER_DEFINITIONS
from analysis.common.measures.steadiness import unsteady_lines
from analysis.common.presentation.caveats import TIMING_KEY, draw_notes, timing_caveat
from analysis.common.presentation.device import device_name
from analysis.common.presentation.stage_plots import STAGE_FILES, stages_frame, write_stages
from analysis.common.presentation.style import save_figure
from analysis.common.runs.command import Screen
from analysis.common.runs.identity import run_identity
from analysis.common.runs.run_record import run_record
from analysis.efficiency import bound as _bound
from analysis.efficiency import count as _count
from analysis.efficiency import measure as _measure
from analysis.efficiency.arch import cost_of, get_arch, paper_archs
from analysis.efficiency.compare import (
    add_ratios,
    comparison_markdown,
    comparison_table,
    on_cuda,
    paper_summary,
    spread_summary,
)
from analysis.efficiency.headline import efficiency_headline
from analysis.efficiency.options import EfficiencyArgs
from analysis.efficiency.plots import (
    has_cuda_time,
    plot_cuda_time_vs_budget,
    plot_flops_vs_budget,
    plot_memory_vs_budget,
    plot_prefill_vs_budget,
)
from analysis.efficiency.scope import checked_scope, family_budgets, resolve_arch, resolve_dtype
from litelvlm.cli_args import split_list
from litelvlm.cost import costs, counted
from litelvlm.errors import LiteLVLMError
from litelvlm.machine.busy import busy_warning
from litelvlm.machine.versions import dist_version
from litelvlm.methods import get_method, method_names
from litelvlm.runs.io import atomic_path, write_csv, write_json
from litelvlm.runs.run_folder import RunFolder
from litelvlm.switches import ARRANGEMENTS

log = logging.getLogger(__name__)
#: the methods' options this command offers, at their defaults (``EfficiencyArgs``' fields)
METHOD_DEFAULTS = {f.name: f.default for f in fields(EfficiencyArgs)}


def run_efficiency(a: EfficiencyArgs, screen: Screen = Screen()) -> int:
    """``litelvlm efficiency``; ``--threads`` applies to this run only (torch's setting is restored);
    ``screen`` says what it prints."""
    prev = torch.get_num_threads()
    try:
        with RunFolder(a.out, command="efficiency", owned=STAGE_FILES) as folder:
            return _run(a, folder, screen)
    finally:
        torch.set_num_threads(prev)


def _run(a: EfficiencyArgs, folder, screen: Screen
         ) -> int:  # > 60 lines: the run's steps: count, time, compare, write

    a = resolve_arch(a)
    full_size = a.arch in cost_of(get_arch(a.arch)).full_size
    small = " or ".join(name for c in costs() for name in c.archs if name not in c.full_size)
    if not a.flops_only and a.device == "cpu" and full_size and a.quantize != "none":
        raise LiteLVLMError(f"--quantize times the model, and the full-size {a.arch} is not timed on a CPU: "
                            f"use --device cuda, or --arch {small} on a CPU")
    if not a.flops_only and a.device == "cpu" and full_size:  # the defaults: nothing to refuse

        print(f"efficiency: the full-size {a.arch} is not timed on a CPU; counting its FLOPs and activation "
              f"bytes only (as --flops-only). Time it with --device cuda, or on a CPU with --arch {small}.",
              file=sys.stderr)
        a = replace(a, flops_only=True)
    arch, methods, budgets, runs, attns, dtype_name = checked_scope(a)
    cost = cost_of(arch)
    # the command records the family's default budgets
    a = replace(a, budgets=family_budgets(cost, a.budgets))
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    dtype_name, auto = resolve_dtype(dtype_name, a, arch)
    chain = (a.e2e == "chain" or (a.e2e == "auto" and a.device == "cuda")) and not cost.sums_parts
    dtype = getattr(torch, dtype_name)
    out = Path(a.out)
    t0 = time.perf_counter()
    # counted: one per (method, K), a video prompt's per (method, K, arrangement)
    rows = cost.rows(arch, runs, a)
    df = _count.flops_rows(arch, rows, attns, dtype, a)
    log.info("FLOPs counted in %.1f s", time.perf_counter() - t0)
    busy, timing = None, {}
    if not a.flops_only:
        tm = _measure.timing_rows(cost, arch, rows, attns, a.device, dtype, a, a.warmup, a.repeats, chain,
                                  quantize=(a.quantize, a.quantize_backend))
        timing = tm.attrs.get("stage_timing") or {}  # the chain timed by stage (stages.csv)
        if a.device == "cpu":
            if busy := busy_warning():
                print(f"efficiency: warning: {busy}", file=sys.stderr)
        df = df.merge(tm, on=list(cost.row_keys), how="left")
    else:
        df["device"] = "meta (FLOPs and activation bytes only)"
        df["dtype"] = dtype_name
    df = add_ratios(df, ["attn"])
    if "method" in df and not any(get_method(m).baseline for m in methods):
        df = df[~df["method"].map(lambda m: get_method(m).baseline)].reset_index(drop=True)
    paper = arch.name == cost.paper_arch  # the paper's numbers only beside its architecture's rows
    columns = [b.column for b in budgets]
    cmp = comparison_table(df, tuple(columns) if cost.default_budgets else (192, 64),
                           method_args=None if cost.sums_parts else a, visual=arch.num_patches, paper=paper)

    config = {
        "command": "litelvlm efficiency " + " ".join(_argv(a)),
        "arch": arch.to_dict(), "family": arch.family, "num_visual": arch.num_patches, "methods": methods,
        "budgets": columns, "pairs": [list(p) for p in counted(arch, runs)], "attn_implementations": attns,
        "attn_note": f"eager = the LLM attention of {arch.family} (explicit softmax(QK^T)V); sdpa = "
                     "torch.nn.functional.scaled_dot_product_attention",
        "dtype": dtype_name, **({"dtype_auto": auto} if auto else {}),
        "device": device_name(a.device) if not a.flops_only else "meta",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__, "transformers": dist_version("transformers"),
        "python": platform.python_version(),
        "flops_only": a.flops_only, "quantize": a.quantize, "quantize_backend": a.quantize_backend,
        **method_options(a), **({"arrangements": split_list(a.arrangements)} if cost.arrangements else {}),
        "warmup": a.warmup, "repeats": a.repeats, **_prefill_record(a),
        "torch_threads": torch.get_num_threads(), **({"stage_timing": timing} if timing else {}),
        "e2e_mode": None if a.flops_only else ("chain" if chain else "sum of parts"),
        "flops_conventions": {
            "llm_tflops_analytic": "2*L*(4nd^2 + 2n^2 d + 3ndm) + 2ndV FLOPs (SwiGLU, LM head on all n; with "
                                   "grouped-query attention 4nd^2 is 2nd^2 + 2ndk, k the key/value width)",
            "llm_tmacs_fastv_convention": "L*(4nd^2 + 2n^2 d + 2ndm) multiply-accumulates (FastV paper)",
            "llm_tmacs_paper_convention": "L*(4nd^2 + 2n^2 d + 3ndm) multiply-accumulates, no LM head",
        },
        "paper_definitions": PAPER_DEFINITIONS,
        "paper_flops_fit": fit_paper_text_tokens(arch.llm) if paper else None,
        "seconds": round(time.perf_counter() - t0, 1),
        # the busy-machine warning travels with the tables and figures
        **({TIMING_KEY: busy} if busy else {}),
        "run": run_record(screen.argv),
        **run_identity("efficiency", arch.name, family=arch.family, weights="random"),
    }
    write_csv(out / "efficiency.csv", df)
    write_csv(out / "comparison.csv", cmp)
    with atomic_path(out / "comparison.md") as tmp:
        caveat = timing_caveat(config)
        tmp.write_text((f"> **{caveat}.**\n\n" if caveat else "")
                       + comparison_markdown(cmp, paper, on_cuda(df), " / ".join(sorted(paper_archs()))))
    if a.figures:
        _figures(cost.figure_rows(df), out, [timing_caveat(config)])
    # the chain by stage, where it was timed end to end (an earlier run's stage files dropped otherwise)
    stages = stages_frame(df, ("attn", "method", "budget"))
    notes = [timing_caveat(config)]
    folder.drop_stale(write_stages(out, stages, config, f"{arch.name}-random", a.figures, notes)
                      + write_amdahl(out, stages, f"{arch.name}-random", a.figures, notes, llm_lengths(df)))
    tables = "\n".join(t for t in (paper_summary(df, paper), spread_summary(df)) if t)
    with atomic_path(out / "summary.txt") as tmp:
        tmp.write_text(tables + "\n")
    write_json(out / "config.json", config)
    screen.show_table(tables, out / "summary.txt", "the paper's quantities per method and budget")
    if bound := _bound.screen_warning(df, a.prefill == "captured"):  # overhead-bound prefills, with the ratio
        print(f"efficiency: {bound}")
    for line in unsteady_lines(df.to_dict("records")):   # a chain whose rounds lie twofold apart
        print(f"efficiency: {line}")
    print(f"wrote {out / 'efficiency.csv'} ({len(df)} rows) in {config['seconds']} s; ratios: "
          f"{out / 'comparison.md'}")
    screen.headline("efficiency", efficiency_headline(df, arch.name, a.repeats)
                    + amdahl_lines(amdahl_frame(stages), stages, "litelvlm", lengths=llm_lengths(df)))
    return 0


def _prefill_record(a: EfficiencyArgs) -> dict:
    """config.json's record of ``--prefill captured``, ``--matmul-tflops`` and ``--stage-costs`` (nothing at
    their defaults)."""
    rec = {"prefill": a.prefill, "capture": a.capture} if a.prefill == "captured" else {}
    return rec | ({"matmul_tflops": a.matmul_tflops} if a.matmul_tflops != "auto" else {}) | (
        {"stage_costs": True} if a.stage_costs else {})


def load_efficiency(out: str | Path) -> dict:
    """The tables of an ``efficiency`` output folder: ``efficiency`` and ``comparison`` (DataFrames),
    ``config``."""
    out = Path(out)
    path = out / "efficiency.csv"
    if not path.exists():
        raise LiteLVLMError(f"{path} not found: run `litelvlm efficiency --out {out}` first")
    tables = {"efficiency": pd.read_csv(path), "config": json.loads((out / "config.json").read_text())}
    if (out / "comparison.csv").exists():
        tables["comparison"] = pd.read_csv(out / "comparison.csv")
    return tables


def _figures(df: pd.DataFrame, out: Path, notes=()) -> None:
    plots = [("efficiency_flops", plot_flops_vs_budget)]
    if "prefill_ms" in df and df["prefill_ms"].notna().any():
        plots.append(("efficiency_prefill", plot_prefill_vs_budget))
    if has_cuda_time(df):
        plots.append(("efficiency_cuda", plot_cuda_time_vs_budget))
    plots.append(("efficiency_memory", plot_memory_vs_budget))
    for name, fn in plots:
        fig, _ = fn(df)
        if name == "efficiency_prefill":
            _bound.annotate_figure(fig, df)
        # the timed figures
        draw_notes(fig, notes if name in ("efficiency_prefill", "efficiency_cuda") else ())
        save_figure(fig, out, name, formats=("png",))
        plt.close(fig)


def method_options(a: EfficiencyArgs) -> dict:
    """{argument: value} of the registered methods' options this command offers (``Method.options``)."""
    dests = dict.fromkeys(opt.dest for m in method_names() for opt in get_method(m).options)
    return {dest: getattr(a, dest) for dest in dests if dest in METHOD_DEFAULTS}


def _argv(a: EfficiencyArgs) -> list[str]:
    parts = ["--arch", a.arch, *(["--methods", *split_list(a.methods)] if split_list(a.methods) else []),
             "--budgets", *map(str, a.budgets)]
    if a.quantize != "none":
        parts += ["--quantize", a.quantize, "--quantize-backend", a.quantize_backend]
    if a.flops_only:
        parts.append("--flops-only")
    else:
        parts += ["--device", a.device, "--warmup", str(a.warmup), "--repeats", str(a.repeats)]
        if a.threads is not None:
            parts += ["--threads", str(a.threads)]
        if a.e2e != "auto":
            parts += ["--e2e", a.e2e]
    if a.dtype:
        parts += ["--dtype", a.dtype]
    parts += ["--attn", *split_list(a.attn)]
    if a.text_tokens is not None:
        parts += ["--text-tokens", str(a.text_tokens)]
    for dest in method_options(a):  # each method's options set away from their defaults
        if getattr(a, dest) != METHOD_DEFAULTS[dest]:
            parts += [f"--{dest.replace('_', '-')}", str(getattr(a, dest))]
    if split_list(a.arrangements) != list(ARRANGEMENTS):
        parts += ["--arrangements", *split_list(a.arrangements)]
    if not a.figures:
        parts.append("--no-figures")
    return parts + ["--out", a.out]



