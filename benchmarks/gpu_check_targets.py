"""The GPU check's targets, each judged MET, MISSED or NOT MEASURED (with the reason) from one results
folder (``benchmarks/gpu_check_runs.py`` reads it). Every ratio is taken within one run on one card.

Details: docs/testing.md (``benchmarks.gpu_check_targets``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from gpu_check_runs import (
    NAN,
    Run,
    check_seconds,
    images_per_s,
    prefill_value,
    pytest_counts,
    read_runs,
    stage_ms,
    throughput,
    unsteady_note,
)

from analysis.common.presentation.markdown_table import finite

#: each family's full-size random preset, then its tiny one (a dry run)
MODELS = {"GLaMM-7B": ("glamm-7b-random", "tiny-random"),
          "Sa2VA-3B": ("sa2va-qwen2_5-vl-3b-random", "sa2va-tiny-random"),
          "UniPixel-3B": ("unipixel-3b-random", "unipixel-tiny-random"),
          "VideoGLaMM": ("videoglamm-random", "videoglamm-tiny-random")}
#: each family's official attention kernel
OFFICIAL_ATTN = {"GLaMM-7B": "eager", "Sa2VA-3B": "sdpa", "UniPixel-3B": "sdpa", "VideoGLaMM": "eager"}
#: LiteLVLM's budget judged (VideoGLaMM: per frame)
LITE_BUDGET = {"VideoGLaMM": 196}
T1_WITHIN, T2_WITHIN, T3_SPEEDUP, T3_OF_ROOFLINE = 2.0, 3.0, 1.0, 0.9
T4_B8, T4_B32, T6_SECONDS = 2.0, 3.0, 480.0
P_WITHIN = {"eager": 2.0, "sdpa": 1.5}
P_SPEEDUP_192, P_OF_ROOFLINE, P_VIDEO_WITHIN, P_VIDEO_SPEEDUP_64 = 2.0, 0.9, 2.0, 2.0
VERDICTS = ("MET", "MISSED", "NOT MEASURED")


@dataclass(frozen=True)
class Verdict:
    """One target's row: what was measured against which threshold, the verdict, the run read and a note (the
    reason when not measured)."""

    target: str
    model: str
    measure: str
    measured: float
    threshold: str
    verdict: str
    run: str = ""
    note: str = ""
    unit: str = "x"

    def shown(self) -> str:
        """The measured value with its unit ('n/a' when not measured)."""
        if not finite(self.measured):
            return "n/a"
        shown = {"x": f"{self.measured:.2f}x", "s": f"{self.measured:.0f} s"}
        return shown.get(self.unit, f"{self.measured:g}")


def judge(target: str, model: str, measure: str, value: float, ok: bool, threshold: str, run: str = "",
          note: str = "", unit: str = "x") -> Verdict:
    """MET or MISSED by ``ok``; NOT MEASURED where ``value`` is not a number (``note`` says why)."""
    verdict = VERDICTS[0 if ok else 1] if finite(value) else VERDICTS[2]
    return Verdict(target, model, measure, value if finite(value) else NAN, threshold, verdict, run, note,
                   unit)


def find(runs: list[Run], family: str, attn: str, prefill: str = "captured",
         encoders: str = "auto") -> tuple[Run | None, str]:
    """(the run of ``family``'s model at ``attn``, ``prefill`` and ``encoders``, the full-size model's first;
    None and the reason when there is none)."""
    for model in MODELS[family]:
        for run in runs:
            if (run.model, run.attn, run.prefill, run.encoders) == (model, attn, prefill, encoders):
                return run, ""
    return None, f"no validate run {MODELS[family][0]}-{attn}-{prefill}"


def _note(run: Run, why: str) -> str:
    return why or (f"recorded: {run.recorded()}" if run.recorded() else "")


def roofline_targets(runs: list[Run]) -> list[Verdict]:
    """T1 and T2: ``none``'s whole call (and GLaMM-7B's vision and mask stages) over their rooflines."""
    out = []
    checks = [("T1", "GLaMM-7B", s, T1_WITHIN) for s in ("total", "vision", "mask")]
    checks += [("T2", family, "total", T2_WITHIN) for family in ("Sa2VA-3B", "UniPixel-3B", "VideoGLaMM")]
    for target, family, stage, bound in checks:
        run, why = find(runs, family, OFFICIAL_ATTN[family])
        ms, roof = NAN, NAN
        if run is not None:
            ms, roof, why = stage_ms(run, "none", None, stage)
        x = ms / roof if finite(ms, roof) and roof > 0 else NAN
        out.append(judge(target, family, stage, x, x <= bound, f"<= {bound:g}x", run.name if run else "",
                         (_note(run, why) + unsteady_note(run, [("none", None)])) if run else why))
    return out


def _unshortened(run: Run, budget: int) -> str:
    """A note where LiteLVLM's prompt is as long as ``none``'s (VideoGLaMM's pool-min at 196 a frame keeps 144
    tokens, as none does): the speed-up then measures pruning's cost alone."""
    none, _ = prefill_value(run, "none", None, "seq_len")
    lite, _ = prefill_value(run, "litelvlm", budget, "seq_len")
    if finite(none, lite) and none == lite:
        return f": the prompt did not shorten ({none:.0f} tokens both), pruning's cost alone"
    return ""


def _own_cost_bound(run: Run | None, budget: int) -> str:
    """The most LiteLVLM's whole call could gain over ``none``'s were its LLM to take no time, with what it
    adds in the vision and selection stages (its paired CLIP, its scoring): below 1x, a slower call is
    unavoidable."""
    if run is None:
        return ""
    ms = {(m, s): stage_ms(run, m, b, s)[0] for m, b in (("none", None), ("litelvlm", budget))
          for s in ("total", "vision", "selection", "prefill", "decode")}
    llm = ms[("none", "prefill")] + ms[("none", "decode")]
    own = sum(ms[("litelvlm", s)] - ms[("none", s)] for s in ("vision", "selection"))
    if not finite(llm, own, ms[("none", "total")]) or ms[("none", "total")] - llm + own <= 0:
        return ""
    bound = ms[("none", "total")] / (ms[("none", "total")] - llm + own)
    return (f"; at most {bound:.2f}x with no LLM time (its vision and selection add {own:+.1f} ms, "
            f"none's LLM {llm:.1f} ms)")


def speedup_targets(runs: list[Run]) -> list[Verdict]:
    """T3: LiteLVLM over ``none``, the whole call, per family and attention kernel; GLaMM-7B's against the
    roofline's own ratio too."""
    out = []
    for family in MODELS:
        budget = LITE_BUDGET.get(family, 192)
        for attn in ("eager", "sdpa"):
            run, why = find(runs, family, attn)
            none = lite = (NAN, NAN, why)
            if run is not None:
                none, lite = stage_ms(run, "none", None, "total"), stage_ms(run, "litelvlm", budget, "total")
            name = run.name if run else ""
            x = none[0] / lite[0] if finite(none[0], lite[0]) else NAN
            why = "" if finite(x) else (none[2] if not finite(none[0]) else lite[2])
            out.append(judge("T3", family, f"over none, {attn}", x, x >= T3_SPEEDUP, f">= {T3_SPEEDUP:g}x",
                             name, why or f"LiteLVLM@{budget}{_unshortened(run, budget)}"
                             f"{_own_cost_bound(run, budget)}"
                             f"{unsteady_note(run, [('none', None), ('litelvlm', budget)])}"))
            if family != "GLaMM-7B":
                continue
            roof = none[1] / lite[1] if finite(none[1], lite[1]) and lite[1] > 0 else NAN
            if finite(roof):
                threshold = (f">= {T3_OF_ROOFLINE * roof:.2f}x ({T3_OF_ROOFLINE:g} x the roofline's "
                             f"{roof:.2f}x)")
            else:
                threshold, why = f">= {T3_OF_ROOFLINE:g} x the roofline's ratio", why or none[2] or lite[2]
            out.append(judge("T3", family, f"of the roofline's, {attn}", x if finite(roof) else NAN,
                             x >= T3_OF_ROOFLINE * roof, threshold, name, why or f"LiteLVLM@{budget}"))
    return out


def throughput_targets(out: Path) -> list[Verdict]:
    """T4: GLaMM-7B's images/s at B = 8 and LiteLVLM@192's at B = 32 over ``none``'s at B = 1."""
    model = next((m for m in MODELS["GLaMM-7B"] if throughput(out, m) is not None), MODELS["GLaMM-7B"][0])
    table = throughput(out, model)
    checks = (("none B=8 over B=1", "none", None, 8, T4_B8),
              ("LiteLVLM@192 B=32 over none B=1", "litelvlm", 192, 32, T4_B32))
    verdicts = []
    for measure, method, budget, batch, bound in checks:
        if table is None:
            x, why = NAN, f"no throughput/{model}/throughput.csv"
        else:
            x = images_per_s(table, method, budget, batch) / images_per_s(table, "none", None, 1)
            at = f"@{budget}" if budget else ""
            why = "" if finite(x) else f"no {method}{at} B={batch} or none B=1 row"
        verdicts.append(judge("T4", "GLaMM-7B", measure, x, x >= bound, f">= {bound:g}x",
                              f"throughput/{model}", why))
    return verdicts


def check_targets(out: Path, now: float | None = None) -> list[Verdict]:
    """T5 (the gpu tests) and T6 (the whole check's seconds)."""
    log = out / "gpu-tests.log"
    if log.is_file():
        counts = pytest_counts(log.read_text())
        passed, bad = counts.get("passed", 0), counts.get("failed", 0) + counts.get("errors", 0)
        note = ", ".join(f"{n} {w}" for w, n in counts.items()) or "no tests ran"
        t5 = judge("T5", "", "gpu tests passed", float(passed), passed >= 1 and bad == 0,
                   ">= 1 passed, none failed", "gpu-tests.log", note, unit="")
    else:
        t5 = judge("T5", "", "gpu tests passed", NAN, False, ">= 1 passed, none failed", "",
                   "no gpu-tests.log (the step did not run)", unit="")
    seconds, how = check_seconds(out, time.time() if now is None else now)
    t6 = judge("T6", "", "wall seconds", seconds, seconds <= T6_SECONDS, f"<= {T6_SECONDS:g} s", "steps.log",
               how, unit="s")
    return [t5, t6]


def prefill_targets(runs: list[Run]) -> list[Verdict]:
    """P1-P6: the decoder-layer prefill (validate.csv) of the default captured runs."""
    out = []

    def value(family, attn, method, budget, column):
        run, why = find(runs, family, attn)
        return (NAN, why, "") if run is None else (*prefill_value(run, method, budget, column), run.name)

    for target, attn in (("P1", "eager"), ("P2", "sdpa")):
        x, why, name = value("GLaMM-7B", attn, "none", None, "over_roofline")
        out.append(judge(target, "GLaMM-7B", f"prefill over roofline, {attn}", x, x <= P_WITHIN[attn],
                         f"<= {P_WITHIN[attn]:g}x", name, why))
    for target, family, attn, budget, bound in (("P3", "GLaMM-7B", "eager", 192, P_SPEEDUP_192),
                                                ("P6", "VideoGLaMM", "eager", 64, P_VIDEO_SPEEDUP_64)):
        none, why, name = value(family, attn, "none", None, "paper_prefill_ms")
        lite, why2, _ = value(family, attn, "litelvlm", budget, "paper_prefill_ms")
        x = none / lite if finite(none, lite) else NAN
        out.append(judge(target, family, f"prefill speed-up @{budget}, {attn}", x, x >= bound,
                         f">= {bound:g}x", name, why or why2))
    for family, attn in (("GLaMM-7B", "sdpa"), ("Sa2VA-3B", "eager"), ("Sa2VA-3B", "sdpa"),
                         ("UniPixel-3B", "eager"), ("UniPixel-3B", "sdpa")):
        none, why, name = value(family, attn, "none", None, "paper_prefill_ms")
        lite, why2, _ = value(family, attn, "litelvlm", 192, "paper_prefill_ms")
        roof, why3, _ = value(family, attn, "litelvlm", 192, "roofline_speedup")
        x = none / lite / roof if finite(none, lite, roof) and roof > 0 else NAN
        out.append(judge("P4", family, f"prefill speed-up @192 of the roofline's, {attn}", x,
                         x >= P_OF_ROOFLINE, f">= {P_OF_ROOFLINE:g} of the roofline's", name,
                         why or why2 or why3))
    x, why, name = value("VideoGLaMM", "eager", "none", None, "over_roofline")
    out.append(judge("P5", "VideoGLaMM", "prefill over roofline, eager", x, x <= P_VIDEO_WITHIN,
                     f"<= {P_VIDEO_WITHIN:g}x", name, why))
    return sorted(out, key=lambda v: v.target)


def all_targets(out: Path, now: float | None = None) -> list[Verdict]:
    """Every target of the results folder ``out``, T1-T6 then P1-P6."""
    runs = read_runs(out)
    return [*roofline_targets(runs), *speedup_targets(runs), *throughput_targets(out),
            *check_targets(out, now), *prefill_targets(runs)]
