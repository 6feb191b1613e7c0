"""Checks, real-size ratios and the markdown report of ``litelvlm validate`` (see
:mod:`analysis.validate.compute`).

Checks (each a column of ``checks.csv`` and a line of ``report.md``):

* ``none`` is deterministic: its measured run equals the reference run (the first call);
* every method at budget N that keeps all N tokens in raster order equals ``none`` (masks and logits);
* no method changes the text tokens: the ids the LLM embeds equal ``none``'s;
* every mask is bool, one per sampled sentence, at the image's size; one [SEG] position per sentence.

Ratios (``ratios.csv``): prefill speedup (the paper's definition, the decoder-layer loop, and this project's),
this project's reading of the paper's "CUDA time" and activation-memory reduction of every method at each
budget against ``none``, beside the FLOPs-ideal prefill speedup of what runs
(``analysis.common.measures.flops``, no LM head) and the paper's LiteLVLM figures (GLaMM-7B on a GPU: prefill
166 -> 75 -> 54 ms, activations
0.81 -> 0.35 -> 0.21 GB at 576 / 192 / 64).
"""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from analysis.common.measures.amdahl import amdahl_frame, amdahl_lines, llm_lengths, write_amdahl
from analysis.common.measures.flops import DecoderSizes, llm_flops_exact, schedule_plan
from analysis.common.measures.paper_efficiency import PAPER_BY_METHOD, paper_arch, paper_ratio, paper_row
from analysis.common.measures.steadiness import unsteady_lines
from analysis.common.presentation.caveats import timing_caveat
from analysis.common.presentation.device import device_name
from analysis.common.presentation.markdown_table import to_markdown
from analysis.common.presentation.stage_plots import (
    STAGE_MS,
    headline_lines,
    screen_line,
    stages_frame,
    write_stages,
)
from analysis.validate.call_roofline import report_lines
from analysis.validate.checks import checks, failed_text, is_baseline_row, logit_tolerance
from analysis.validate.memory import memory_frame
from analysis.validate.video import arrangement_lines, llm_tokens, with_arrangement
from litelvlm.methods import BASELINE, get_method, is_baseline
from litelvlm.registry.provenance import weights_banner
from litelvlm.runs.io import atomic_path, write_csv

ROW_COLUMNS = ["method", "budget", "kind", "prune_layer", "llm_input_tokens", "visual_tokens_input",
               "visual_tokens_kept", "keeps_all_in_order", "text_tokens", "seq_len", "seg_positions",
               "mask_shape",
               "mask_dtype", "mask_pixels", "prefill_ms", "e2e_ms", "selection_ms", "peak_rss_gib",
               "activation_mb",
               "llm_activation_mb", "text_ids_equal", "masks_equal_none", "max_logit_diff_none", "repeats",
               "paper_prefill_ms", "cuda_time_reading_ms", *STAGE_MS.values()]

#: Targets for LiteLVLM at 192 tokens against 576 (prefill speedup, activation reduction, share of the
#: FLOPs-ideal speedup reached, selection time as a share of prefill).
TARGETS = {"prefill_speedup": 2.2, "act_reduction": 2.3, "frac_of_ideal": 0.9, "selection_share": 0.02}


def run_schedule(sizes, n: int, text_tokens: int, method: str, budget: int, method_args=None,
                 backbone: str = ""):
    """The token schedule of ``method`` at ``budget`` as it ran
    (``analysis.common.measures.flops.schedule_plan``, with the method's options from the run's arguments
    ``method_args``; its defaults without them); a stage from a layer the model does not have (a method
    pruning after its last layer, e.g. DART's layer 2 in a 2-layer model) is dropped: every layer then sees
    what the earlier stages give. ``backbone``: the family's (the method's variant for it, where one is
    registered, runs)."""

    spec = get_method(method, backbone)
    plan = schedule_plan(method, budget, n, sizes.llm_layers, text_tokens, spec.options_from(method_args),
                         spec=spec)
    stages = tuple(st for st in plan.stages if st[0] < sizes.llm_layers)
    return plan if stages == plan.stages else replace(plan, stages=stages)


def ideal_speedup(sizes, n: int, text_tokens: int, method: str, budget: int, method_args=None,
                  backbone: str = "") -> float:
    """LLM FLOPs of ``none`` / FLOPs of ``method`` at ``budget`` (the prefill as run: no LM head), for a
    decoder of ``sizes`` (``analysis.common.measures.flops.LLMSizes``) and ``n`` visual tokens unpruned."""

    base = llm_flops_exact(sizes, run_schedule(sizes, n, text_tokens, BASELINE, n), lm_head=False)
    run = run_schedule(sizes, n, text_tokens, method, budget, method_args, backbone)
    return base / llm_flops_exact(sizes, run, lm_head=False)


def paper_definitions(sizes, n: int, text_tokens: int, method: str, budget: int,
                      method_args=None, backbone: str = "") -> tuple[float, float]:
    """(TFLOPs, activation GiB) of ``method`` at ``budget`` under the paper's definitions
    (``analysis.common.measures.paper_efficiency``: the authors' compiled loop, bfloat16 element size; the
    ratios do not depend on it)."""

    row = paper_row(sizes, run_schedule(sizes, n, text_tokens, method, budget, method_args, backbone))
    return row["paper_tflops"], row["paper_activation_gib"]


def ratios(rows: pd.DataFrame, sizes, n: int, method_args=None, backbone: str = "",
           llm_k: dict | None = None) -> pd.DataFrame:
    """Per (method, budget): prefill speedup, activation reduction, FLOPs-ideal speedup and the paper's
    (``method_args``: the run's arguments, each method's options; ``backbone``: the family's; ``llm_k``:
    {(method, budget): the visual tokens the LLM gets}, a video family's per-frame budgets read in the LLM's
    tokens; None: the budget)."""

    baseline = is_baseline_row(rows)
    base = rows[baseline].iloc[0]
    out = rows[~baseline][["method", "budget", "prefill_ms", "llm_activation_mb", "activation_mb",
                           "selection_ms", "paper_prefill_ms", "cuda_time_reading_ms"]].copy()
    out["prefill_speedup"] = base["prefill_ms"] / out["prefill_ms"]
    # the paper's prefill time (the decoder-layer loop only) and this project's reading of its "CUDA time"
    out["paper_def_prefill_speedup"] = base["paper_prefill_ms"] / out["paper_prefill_ms"]
    out["cuda_time_reading_speedup"] = base["cuda_time_reading_ms"] / out["cuda_time_reading_ms"]
    out["act_reduction"] = base["llm_activation_mb"] / out["llm_activation_mb"]
    out["e2e_act_reduction"] = base["activation_mb"] / out["activation_mb"]
    text = int(base["text_tokens"])
    runs = [(m, (llm_k or {}).get((m, b), b)) for m, b in zip(out["method"], out["budget"].astype(int))]
    out["flops_ideal_speedup"] = [ideal_speedup(sizes, n, text, m, b, method_args, backbone) for m, b in runs]
    base_def = paper_definitions(sizes, n, text, BASELINE, n)
    defs = [paper_definitions(sizes, n, text, m, b, method_args, backbone) for m, b in runs]
    out["paper_def_tflops"] = [t for t, _ in defs]
    out["paper_def_activation_gib"] = [g for _, g in defs]
    out["paper_def_flops_speedup"] = base_def[0] / out["paper_def_tflops"]
    out["paper_def_act_reduction"] = base_def[1] / out["paper_def_activation_gib"]
    for time, ratio in (("prefill_ms", "prefill_speedup"), ("paper_prefill_ms", "paper_def_prefill_speedup")):
        spread = [paired_spread(base, row, time) for _, row in rows.loc[out.index].iterrows()]
        out[f"{ratio}_min"] = [lo for lo, _ in spread]
        out[f"{ratio}_max"] = [hi for _, hi in spread]
    out["frac_of_ideal"] = out["prefill_speedup"] / out["flops_ideal_speedup"]
    out["selection_share"] = out["selection_ms"] / out["prefill_ms"]
    # the paper's numbers by method (only LiteLVLM's are known): the other rows get none of them
    own = [PAPER_BY_METHOD.get(m) for m in out["method"]]
    for col, metric in (("paper_prefill_speedup", "prefill_ms"), ("paper_act_reduction", "activations_gb"),
                        ("paper_cuda_speedup", "cuda_ms")):
        out[col] = [paper_ratio(metric, int(b), x) if x else float("nan") for b, x in zip(out["budget"], own)]
    return out.reset_index(drop=True)


def paired_spread(base: pd.Series, row: pd.Series, time: str) -> tuple[float, float]:
    """(min, max) of the per-round ratios baseline / ``row`` of ``time``, when both were timed in the same
    interleaved rounds (``round_group``); NaN otherwise (one call, or rounds of different invocations). The
    ratio of the medians lies between them."""
    nan = (float("nan"), float("nan"))
    key = f"{time}_rounds"
    if key not in row or not isinstance(row.get(key), str) or not isinstance(base.get(key), str):
        return nan
    if not row.get("round_group") or row.get("round_group") != base.get("round_group"):
        return nan
    b, t = [float(x) for x in base[key].split()], [float(x) for x in row[key].split()]
    if len(b) != len(t) or len(t) < 2:
        return nan
    r = [x / y for x, y in zip(b, t)]
    return min(r), max(r)


def _paper_rows(r: pd.DataFrame) -> pd.DataFrame:
    """The rows of the methods whose numbers the paper gives (``PAPER_BY_METHOD``: LiteLVLM's)."""

    return r[r["method"].isin(list(PAPER_BY_METHOD))]


def target_lines(r: pd.DataFrame, budget: int = 192, arch: str | None = None) -> list[str]:
    """MET / MISSED lines for LiteLVLM at ``budget`` against :data:`TARGETS`; a model of another architecture
    than the paper's (``arch``; None: the paper's) gets one line saying that its ratios are not judged."""
    full = paper_arch()
    if arch not in (None, full):
        return [f"- not judged: the targets are the paper's {full} figures, and this model is the `{arch}` "
                "architecture (its ratios are shown below, for the mechanism only)"]
    sel = _paper_rows(r)[_paper_rows(r)["budget"] == budget]
    if sel.empty:
        return [f"- LiteLVLM at {budget} was not run: no targets checked"]
    x = sel.iloc[0]
    # each value in the unit of its target: ratios as "2.19x", shares as "7.4%"
    items = [("prefill speedup (the paper's definition: the decoder-layer loop only)",
              f"{x['paper_def_prefill_speedup']:.3g}x", f">= {TARGETS['prefill_speedup']}x",
              x["paper_def_prefill_speedup"] >= TARGETS["prefill_speedup"]),
             ("activation reduction (the paper's definition: storing activation, sum of n(2d+m)x2 bytes)",
              f"{x['paper_def_act_reduction']:.3g}x", f">= {TARGETS['act_reduction']}x",
              x["paper_def_act_reduction"] >= TARGETS["act_reduction"]),
             ("share of the FLOPs-ideal speedup", f"{x['frac_of_ideal']:.1%}",
              f">= {TARGETS['frac_of_ideal']:.0%}", x["frac_of_ideal"] >= TARGETS["frac_of_ideal"]),
             ("selection time / prefill", f"{x['selection_share']:.1%}",
              f"< {TARGETS['selection_share']:.0%}", x["selection_share"] < TARGETS["selection_share"])]
    return [f"- {name}: {val} (target {target}) **{'MET' if ok else 'MISSED'}**" for name, val, target,
            ok in items]


def _machine(pipe) -> str:
    return f"{device_name(pipe.device)}; torch {torch.__version__}; {platform.platform()}"


def screen_lines(r: pd.DataFrame, arch: str | None = None, banner: str | None = None,
                 cuda: bool = True, lengths: dict | None = None) -> list[str]:
    """For the terminal: which weights made the numbers (``banner``), LiteLVLM's ratios against ``none`` on
    the paper's definitions, named as such (the CUDA time only on ``cuda``), at the sequence lengths
    ``lengths`` gives ({(method, budget): LLM tokens}, :func:`_lengths`), and whether the targets were judged
    (full size only)."""
    lines = [banner] if banner else []
    lengths = lengths or {}
    full = next((n for (m, _), n in lengths.items() if is_baseline(m)), None)
    for x in _paper_rows(r).itertuples():
        seq = lengths.get((x.method, x.budget))
        said = f" (sequence {full} -> {seq} tokens)" if full is not None and seq is not None else ""
        lines.append(f"litelvlm@{x.budget} vs none, on the paper's definitions: prefill (decoder-layer loop) "
                     f"{x.paper_def_prefill_speedup:.2f}x, storing activation "
                     f"{x.paper_def_act_reduction:.2f}x lower, FLOPs {x.paper_def_flops_speedup:.2f}x fewer"
                     + (f"; CUDA time (this project's reading) {x.cuda_time_reading_speedup:.2f}x" if cuda
                        else "") + said)
    return lines


#: report.md's short tables (every column is in ratios.csv and validate.csv): the ratios of every run, the
#: paper's LiteLVLM figures beside this run's on the paper's definitions (the paper's architecture only), and
#: each run's times and memory. CUDA times only on CUDA.
RATIO_COLUMNS = ["method", "budget", "paper_def_prefill_speedup", "prefill_speedup",
                 "cuda_time_reading_speedup",
                 "act_reduction", "paper_def_act_reduction", "flops_ideal_speedup", "frac_of_ideal",
                 "selection_share"]
PAPER_COLUMNS = ["method", "budget", "paper_def_prefill_speedup", "paper_prefill_speedup",
                 "cuda_time_reading_speedup",
                 "paper_cuda_speedup", "paper_def_act_reduction", "paper_act_reduction",
                 "paper_def_flops_speedup"]
RUN_COLUMNS = ["method", "budget", "visual_tokens_kept", "prefill_ms", "paper_prefill_ms", "e2e_ms",
               "cuda_time_reading_ms", "llm_activation_mb", "peak_rss_gib", "mask_iou_vs_compare"]
CUDA_COLUMNS = ("cuda_time_reading_speedup", "paper_cuda_speedup", "cuda_time_reading_ms")
#: ratios.csv's columns holding the paper's LiteLVLM figures: empty for another architecture than the paper's
PAPER_FIGURES = ("paper_prefill_speedup", "paper_act_reduction", "paper_cuda_speedup")


def short_view(df: pd.DataFrame, columns: list[str], cuda: bool) -> pd.DataFrame:
    """``df``'s ``columns`` that it has (CUDA-only ones only when ``cuda``): a report table's human view."""
    return df[[c for c in columns if c in df and (cuda or c not in CUDA_COLUMNS)]]


def memory_note(setup: dict, a, pipe) -> str:
    """The memory section's text: the weights' storage and what ``peak_mb`` adds up."""
    w = setup["weights_mb"]
    q = pipe.quantization
    how = (f"the LLM's {q.quantized} decoder linear layers quantized to {q.mode} with {q.backend} {q.version}"
           + (f", {len(q.kept)} kept in {str(pipe.dtype)[6:]}" if q.kept else "")) if q else "not quantized"
    parts = ", ".join(f"`{k}` {v:.0f} MB" for k, v in w["parts"].items())
    return (f"Weights ({how}): {parts} (the pipeline's modules, each whole: a CLIP backend's text tower "
            f"included); {w['total']:.0f} MB in all (a storage two modules share counted once): storage "
            "bytes of parameters, buffers and quantization states. ``peak_mb`` = those weights + the call's "
            "activation peak (``activation_mb``): the whole model's memory during one call. "
            "``paper_def_activation_gib`` is the paper's analytic storing activation. MB here are MiB (2^20 "
            "bytes).")


def prompt_line(setup: dict, a) -> str:
    """The report's line on the image, its prompt and N."""
    n, h, w = setup["num_visual"], *setup["image_size"]
    head = f"Image `{setup['image']}` ({w}x{h}), N = {n} visual tokens"
    if len(setup.get("mask_shape", ())) == 3:  # a video
        head = (f"Video `{setup['image']}` ({w}x{h}), N = {n} visual tokens (16 frames x 144 CLIP context + "
                "16 x 64 InternVideo2 tokens); budgets are per frame, K of each frame's "
                f"{setup['full_budget']} CLIP patches (an LLM-side method keeps round({n} K / "
                f"{setup['full_budget']}) of the N: this project's reading)")
    if setup["skipped_budgets"]:
        head += f" (budgets above N skipped: {', '.join(map(str, setup['skipped_budgets']))})"
    tokens = f"prompt of {setup['text_tokens']} text tokens and the {n} visual tokens"
    if not setup["questions"]:  # the family's own protocol: a fixed number of expressions per prompt
        said = "; ".join(f"\"{s}\"" for s in setup["sentences"])
        return (f"{head}. The family's protocol: {len(setup['sentences'])} expression(s) per prompt, "
                f"{tokens}: {said}")
    return (f"{head}. {a.model.card.display_name}'s official protocol (seed {a.seed}): "
            f"{len(setup['sentences'])} sentences, {tokens}. Questions: "
            + "; ".join(f"\"{q}\"" for q in setup["questions"]))


def write_report(out: Path, rows: pd.DataFrame, setup: dict, a, pipe, n: int) -> tuple[list[str], list[str]]:
    # > 60 lines: the report's sections, in reading order
    """Write validate.csv, checks.csv, ratios.csv, stages.csv / stages.png and report.md for a run of ``n``
    visual tokens unpruned; return the failed checks with their runs ("" when all passed) and the lines for
    the terminal
    (:func:`screen_lines`, then the time-by-stage line)."""
    kernel = getattr(pipe.language_model.config, "_attn_implementation", None) or "eager"
    tolerance = logit_tolerance(kernel, a.prefill, bool(a.compile), str(pipe.dtype)[6:])
    result = checks(rows, setup.get("full_budget", n), len(setup["sentences"]),
                    tuple(setup.get("mask_shape", setup["image_size"])), tolerance)
    sizes = DecoderSizes.of(pipe.language_model.config)
    llm_k = None
    # per-frame budgets: the FLOPs count the LLM's visual tokens of each run
    if pipe.abilities.budget_unit == "frame":

        llm_k = llm_tokens(pipe, rows)
    r = ratios(rows, sizes, n, a, pipe.abilities.backbone, llm_k)
    arch = str((pipe.describe().get("arch") or {}).get("name", pipe.family))
    full = paper_arch()
    if arch != full:  # the paper's figures sit beside rows of the paper's architecture only
        r[list(PAPER_FIGURES)] = float("nan")
    cuda = pipe.device.type == "cuda"
    video = arrangement_lines(a, pipe, rows)  # a video model: its arrangement, a null result
    write_csv(out / "validate.csv", with_arrangement(rows, a))
    write_csv(out / "ratios.csv", r)
    stages = stages_frame(rows)  # the whole call by stage: stages.csv, stages.png
    unsteady = unsteady_lines(rows.to_dict("records"))   # runs whose whole call's rounds lie twofold apart
    lengths = llm_lengths(rows, "seq_len")   # each run's LLM sequence, named beside its ratios
    setup["stage_files"] = write_stages(out, stages, setup.get("config", {}), a.model, a.figures,
                                        notes=[timing_caveat(setup)]) + write_amdahl(
        out, stages, a.model, a.figures, notes=[timing_caveat(setup)],
        lengths=lengths)   # where the savings land
    base = rows[is_baseline_row(rows)].iloc[0]
    mem = memory_frame(rows, r, setup["weights_mb"]["total"], a.quantize,
                       paper_definitions(sizes, n, int(base["text_tokens"]), BASELINE, n)[1])
    write_csv(out / "memory.csv", mem)
    write_csv(out / "checks.csv", pd.DataFrame([{"check": k, "passed": not v, "failing": " ".join(v)}
                                                for k, v in result.items()]))
    paper_rows = _paper_rows(r) if arch == full else r.iloc[:0]
    paper_table = (["", "## Beside the paper's LiteLVLM figures", "",
                    to_markdown(short_view(paper_rows, PAPER_COLUMNS, cuda))] if len(paper_rows) else [])

    note = weights_banner(a.model, a.clip)
    if note:  # what a random-weight validation does show
        note += " (the token counts, positions, shapes, checks, time and memory are the architecture's)"
    lines = [f"# Validation: {a.model} on {pipe.device}", "",
             *([f"> **{note}**", ""] if note else []),
             *([f"> **{timing_caveat(setup)}.**", ""] if timing_caveat(setup) else []),
             f"Machine: {_machine(pipe)}. Model dtype {str(pipe.dtype)[6:]}. "
             f"Loaded in {setup['load_ms'] / 1e3:.1f} s (peak RSS {setup['load_peak_rss_gib']:.1f} GiB); "
             f"the image's forwards (``prepare_image``: vision tower, mask encoder) "
             f"{setup['prepare_image_ms'] / 1e3:.1f} s.", "", prompt_line(setup, a),
             *(["", *video] if video else []),
             "", "## Checks", "",
             *[f"- {'PASS' if not v else 'FAIL'}: {k}" + (f" (failing: {' '.join(v)})" if v else "")
                                    for k, v in result.items()], *report_lines(stages, lengths, unsteady),
             "", "## Targets (LiteLVLM at 192 against 576; "
             f"{'CUDA' if pipe.device.type == 'cuda' else 'CPU'} ratios)",
             "", *target_lines(r, arch=arch), "",
             f"Times are the median of {int(rows['repeats'].max())} call(s) per run (interleaved), after a "
             "warm-up call (``none``); with repeated calls, ``*_speedup_min``/``_max`` are the extremes of "
             "the per-round ratios (round i of ``none`` over round i of the run; the ratio of the medians "
             "lies between them); on the CPU they are CPU ratios, not the paper's GPU milliseconds. "
             "``paper_prefill_ms`` is the paper's prefill time, as the authors' compiled code times it: the "
             "decoder-layer loop only (first layer's start to last layer's end; CUDA events on a GPU); the "
             "prefill target uses it. ``prefill_ms`` (this project's) spans the first LLM layer's start to "
             "the final norm's end (for LLM-side methods everything they run inside the LLM, oracles' extra "
             "passes included). ``cuda_time_reading_ms`` is this project's reading of the paper's \"CUDA "
             "time\" (defined in no released file): the whole call (vision, selection, LLM, mask decoder), "
             "timed the same way (shown on CUDA only). "
             "Activation memory: the peak of the tensors a call creates (on CUDA: the allocator's peak), for "
             "the LLM span (``llm_activation_mb``, above the level at its start: the ratios use it) and for "
             "the whole call (``activation_mb``): this project's measured quantities (``act_reduction``). "
             "``paper_def_*`` are the paper's definitions, as the authors' compiled code computes them "
             "(``analysis.common.measures.paper_efficiency``): storing activation = sum over decoder layers "
             "of "
             "n(2d+m) x 2 bytes, FLOPs = sum of 4nd^2 + 2n^2d + 3ndm (with grouped keys and values 2nd^2 + "
             "2ndk for the projections, this project's generalisation), FastV's pruning layer counted at the "
             "full length; the activation target uses it. The paper's columns (``paper_prefill_speedup``, "
             f"``paper_act_reduction``) are its {full} LiteLVLM figures, on LiteLVLM's rows of that "
             "architecture only. The tables show a reader's columns: every column, the spreads "
             "(``*_min``/``_max``) included, is in ``ratios.csv``, ``memory.csv`` and ``validate.csv``.",
             *setup.get("limit_lines", []),
             "", "## Ratios against none", "", to_markdown(short_view(r, RATIO_COLUMNS, cuda)), *paper_table,
             "", "## Memory", "", memory_note(setup, a, pipe), "", to_markdown(mem), "",
             "## Every run", "", to_markdown(short_view(rows, RUN_COLUMNS, cuda)), ""]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(lines))
    screen = screen_lines(r, arch, weights_banner(a.model, a.clip), cuda, lengths) + video + [
        line for line in [screen_line(stages)] if line] + headline_lines(stages, lengths=lengths) + unsteady
    screen += amdahl_lines(amdahl_frame(stages), stages, "litelvlm", lengths=lengths)   # where savings land
    if arch != full:
        screen.append(f"targets not judged: they are the paper's {full} figures, this model is `{arch}`")
    return failed_text(result), screen
