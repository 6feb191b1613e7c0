"""The timing rows of ``litelvlm efficiency``: wall time, CUDA time and activation memory on a device.

One random-weight pipeline (the family's cost description builds it: :meth:`litelvlm.cost.FamilyCost.build`)
per run, its LLM and CLIP attention switched per ``--attn`` value; the family's parts
(:class:`~litelvlm.cost.parts.PrefillParts`) are timed (median wall time after warm-ups, LLM prefills
round-robin; summed CUDA kernel time on GPUs) and their peak activation memory measured
(:func:`litelvlm.machine.memory.peak_activation_bytes`). Beside them, the paper's prefill time
(``paper_prefill_ms``: the decoder-layer loop only, timed during the same calls,
:class:`~litelvlm.cost.timing.LayerLoopTimer`) and this project's reading of the paper's "CUDA time"
(``cuda_time_reading_ms``: the whole pipeline, i.e. ``e2e_ms``). Where the chain is timed end to end, its
time by stage too (:mod:`litelvlm.cost.stages`: ``stage_<stage>_ms``, the median of ``repeats`` more calls
after the timed ones; the table's ``stages.csv``), and, with ``--matmul-tflops``, each stage's roofline from
one more chain counted by stage (:mod:`analysis.common.measures.stage_roofline`; ``--stage-costs`` without a
rate: each stage's FLOPs and weight bytes alone).
"""

from __future__ import annotations

import functools
import logging
import statistics

import pandas as pd
import torch
from tqdm.auto import tqdm

from analysis.common.measures.stage_costs import (
    forwards_rerun,
    less_tower_ms,
    preparation_tower_ms,
    tower_rerun,
)
from analysis.common.measures.stage_roofline import counted_rooflines
from analysis.common.presentation.device import device_name
from analysis.common.presentation.stage_plots import STAGE_MS, median_stages, stage_row, timing_record
from analysis.efficiency.bound import install_prefill, limit_columns, resolve_tflops, say_eager
from analysis.efficiency.options import EfficiencyArgs
from litelvlm.cost import CostArch, FamilyCost
from litelvlm.cost.meta import MB
from litelvlm.cost.parts import PrefillParts
from litelvlm.cost.stages import TOTAL, time_stages
from litelvlm.cost.timing import LayerLoopTimer, cuda_time_ms, interleaved_wall_ms, llm_layers, wall_time_ms
from litelvlm.cost.tokens import selects_on_clip, selects_on_llm_input
from litelvlm.llm.captured import runner_of
from litelvlm.machine.memory import peak_activation_bytes

log = logging.getLogger("analysis.efficiency.compute")


def timing_rows(cost: FamilyCost, arch: CostArch, pairs: list[tuple[str, int]], attns: list[str],
                device: str | torch.device, dtype: torch.dtype, method_args: EfficiencyArgs, warmup: int,
                repeats: int, chain: bool = True,
                quantize: tuple[str, str] = ("none", "bitsandbytes")) -> pd.DataFrame:
    """Wall time, CUDA time and peak activation memory of every part on ``device``, per attention
    implementation (one pipeline, the same weights, its LLM and CLIP attention switched); ``quantize``: (mode,
    backend) of its decoder layers' weights; ``method_args``: the run's arguments (each method's options)."""
    if cost.sums_parts:  # the family times its own parts; the end-to-end time is their sum
        capture = method_args.capture if method_args.prefill == "captured" else None
        rows = cost.timing_rows(arch, pairs, attns, device, dtype, warmup, repeats, device_name(device),
                                capture)
        say_eager([rows.attrs.pop("prefill_eager", {})])
        return rows

    pipe = cost.build(arch, device, dtype, attns[0], quantize=quantize)
    parts, frames = None, []
    tflops = resolve_tflops(method_args, device, dtype)  # the arithmetic limit's rate (None: not known)
    try:
        parts = cost.parts(pipe, arch, method_args)
        for attn in attns:
            cost.set_attention(pipe, attn)
            install_prefill(pipe, method_args)  # --prefill captured: captured afresh for this attention
            frames.append(_time_pipeline(cost, parts, attn, pairs, warmup, repeats, chain, tflops))
        record = timing_record(pipe)  # how the stages were timed (config.json's stage_timing)
    finally:
        del parts, pipe
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    say_eager([f.attrs.pop("prefill_eager", {}) for f in frames])
    out = pd.concat(frames, ignore_index=True)
    out.attrs["stage_timing"] = record if chain else {}
    return out


def _time_pipeline(cost: FamilyCost, parts: PrefillParts, attn: str, pairs: list[tuple[str, int]],
                   warmup: int,
                   # > 60 lines: one interleaved timing loop: splitting it would split its rounds
                   repeats: int, chain: bool, tflops: float | None = None) -> pd.DataFrame:
    """Timing rows of one family's parts (:class:`~litelvlm.cost.parts.PrefillParts`) with attention ``attn``.

    Each distinct LLM token plan is timed once (methods that give the LLM the same number of tokens
    share it), all plans round-robin (see ``interleaved_wall_ms``); the selector is timed per (method,
    budget), and so is the end-to-end chain (``GlammPipeline.ground`` after the per-image steps) with its
    CUDA time and memory when ``chain`` (else ``e2e_ms`` is the sum of the parts' medians, memory not
    measured).
    """
    device, arch, method_args = parts.pipe.device, parts.arch, parts.method_args

    def token_plan(method: str, budget: int):
        return cost.plan(arch, (method, budget), method_args)

    def wall(fn) -> float:
        return wall_time_ms(fn, device, warmup=warmup, repeats=repeats)["median"]

    fixed = {col: wall(fn) for col, fn in parts.fixed_parts().items()}  # GLaMM: clip, text, sam
    plans = {token_plan(m, b): None for m, b in pairs}
    runs = {plan: [f"{m}@{b}" for m, b in pairs if token_plan(m, b) == plan] for plan in plans}
    prefill = {plan: accounted(parts.pipe, functools.partial(parts.run_prefill, plan), *runs[plan])
               for plan in plans}
    # the paper's prefill time of each timed call (layer loop only)
    loops: dict = {plan: [] for plan in plans}

    def looped(plan):
        with LayerLoopTimer(llm_layers(parts.pipe), device) as t:
            out = prefill[plan]()
        loops[plan].append(t.ms)
        return out

    log.info("timing %d LLM prefills round-robin (%s)", len(prefill), attn)
    walls = interleaved_wall_ms({plan: functools.partial(looped, plan) for plan in plans}, device,
                                warmup=warmup, repeats=repeats)
    paper_ms = {plan: statistics.median(v[warmup:]) for plan, v in loops.items()}
    base = next((token_plan(m, b) for m, b in pairs if arch.spec(m).baseline), None)
    spread = {plan: {**paired_spread("prefill_speedup", walls, base, plan),
                     **paired_spread("paper_def_prefill_speedup",
                                     {k: {"times": v[warmup:]} for k, v in loops.items()},
                                     base, plan)} for plan in plans}
    llm = {plan: (walls[plan]["median"], walls[plan]["min"], cuda_time_ms(fn, device),
                  peak_activation_bytes(fn, device)[0]) for plan, fn in prefill.items()}
    rows, full_tower = [], None
    for method, budget in tqdm(pairs, desc=f"timing ({attn})", leave=False):
        plan = token_plan(method, budget)
        prefill_ms, prefill_min, cuda, act = llm[plan]

        def e2e(m=method, b=budget):
            return parts.run_e2e(m, b)

        e2e = accounted(parts.pipe, e2e, f"{method}@{budget}")

        def selection(m=method, b=budget):
            return parts.run_select(m, b)

        spec = arch.spec(method)
        # a method running the tower itself: its own run; on the LLM's inputs: its selection there (as
        # validate's stages time it and its FLOPs are counted); inside the LLM: inside the prefill
        sel_ms = (wall(functools.partial(parts.run_tower, method, budget)) if spec.uses_vision_tower
                  else wall(selection) if selects_on_clip(spec)
                  else wall(functools.partial(parts.run_llm_input_select, method, budget))
                  if selects_on_llm_input(spec) else 0.0)
        # GLaMM: clip, text (text-guided methods), selector, sam
        own = parts.part_times(method, fixed, sel_ms)
        if spec.uses_vision_tower:  # ... in place of the preparation's run, as the stage costs charge it
            full_tower = full_tower if full_tower is not None else statistics.median(
                preparation_tower_ms(parts.pipe, parts.run_forwards) for _ in range(max(repeats, 1)))
            # the rest of the vision forward: on Qwen2.5-VL the forward IS the preparation's run, so two
            # medians of the same work differ by noise; a part is no time below 0
            own[parts.tower_part] = max(0.0, own[parts.tower_part] - full_tower)
        stages = {}
        if chain:
            e2e_ms, e2e_cuda = wall(e2e), cuda_time_ms(e2e, device)
            e2e_act = peak_activation_bytes(e2e, device)[0] / MB
            # a method running the tower itself: charged its own run in place of the preparation's (timed: the
            # image's forwards made again; counted: a full run of the tower)
            spec = parts.pipe.spec(method)
            tower = tower_rerun(parts.pipe, spec, parts.prepared)
            forwards = forwards_rerun(spec, parts.run_forwards)
            with torch.no_grad():  # the chain by stage: more calls, each under the stage timer
                calls = [stage_row(less_tower_ms(parts.pipe, time_stages(parts.pipe, e2e)[1], forwards))
                         for _ in range(repeats)]
            # their medians, and each call's whole call (how steady the medians are)
            stages = median_stages(calls) | {
                "stage_total_ms_rounds": " ".join(repr(float(c[STAGE_MS[TOTAL]])) for c in calls)}
            # with a rate, each stage's roofline: one more chain, counted (not on a run's eager account)
            stages |= counted_rooflines(parts.pipe, functools.partial(parts.run_e2e, method, budget), tflops,
                                        count=method_args.stage_costs, tower=tower)
        else:
            e2e_ms, e2e_cuda, e2e_act = sum(own.values()) + prefill_ms, float("nan"), float("nan")
        rows.append({
            "attn": attn, "method": method, "budget": budget, "device": device_name(device),
            "dtype": str(parts.pipe.dtype)[6:], "prefill_ms": prefill_ms, "prefill_min_ms": prefill_min,
            "llm_cuda_ms": cuda, "llm_act_mb": act / MB, "paper_prefill_ms": paper_ms[plan], **own,
            "e2e_ms": e2e_ms, "e2e_mode": "chain" if chain else "sum of parts", "e2e_cuda_ms": e2e_cuda,
            "e2e_act_mb": e2e_act, "cuda_time_reading_ms": e2e_ms, **spread[plan],
            **limit_columns(parts.pipe, plan, paper_ms[plan], tflops), **stages,
        })
    df = pd.DataFrame(rows)
    df.attrs["prefill_eager"] = eager_runs(parts.pipe)
    return df


def accounted(pipe, fn, *runs: str):
    """``fn`` whose calls put the layer calls a captured prefill ran eagerly on the account of ``runs``
    (``fn`` itself under the eager prefill)."""
    runner = runner_of(pipe.language_model)
    if runner is None:
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            runner.account(*runs)

    return call


def eager_runs(pipe) -> dict[str, list[str]]:
    """{reason: runs} of the layer calls ``pipe``'s captured prefill ran eagerly ({} under the eager
    prefill)."""
    runner = runner_of(pipe.language_model)
    return {} if runner is None else dict(runner.eager_runs)


def paired_spread(ratio: str, times: dict, base, plan) -> dict[str, float]:
    """``{ratio}_min`` and ``{ratio}_max``: the extremes of the per-round ratios baseline / ``plan`` of
    interleaved timings (round i of the baseline over round i of ``plan``); NaN without a baseline. The
    ratio of the medians lies between them."""
    if base is None:
        return {f"{ratio}_min": float("nan"), f"{ratio}_max": float("nan")}
    r = [b / t for b, t in zip(times[base]["times"], times[plan]["times"])]
    return {f"{ratio}_min": min(r), f"{ratio}_max": max(r)}
