"""``validate --prefill`` and the arithmetic limit of its prefills (this project's additions).

* ``--prefill captured``: :mod:`litelvlm.llm.captured` installed on the pipeline's LLM (the layers between
  pruning points as one CUDA graph on cuda, one ``torch.compile``'d function elsewhere); layer calls that ran
  eagerly are named on screen once per reason, with the runs they ran in (:func:`say_eager`).
* ``--matmul-tflops``: the device's matrix-product rate; each row gets ``arithmetic_limit_ms`` (2 x decoder
  parameters x tokens per layer / rate, :mod:`litelvlm.cost.bound`) and ``over_limit`` (``paper_prefill_ms``
  over it), and the roofline (``roofline_ms``, ``over_roofline``, ``roofline_speedup``: compute or weight
  read, whichever is longer, plus attention; the bandwidth measured on the device); a run above 3x its
  roofline is called overhead-bound on screen and in report.md.
"""

from __future__ import annotations

import logging
import sys

import pandas as pd

from litelvlm.cost.bound import (
    OVERHEAD_BOUND,
    decoder_params,
    device_gbps,
    limit_ms,
    lm_roofline_ms,
    matmul_tflops,
    screen_note,
    token_layers,
)
from litelvlm.llm.captured import eager_lines, runner_of
from litelvlm.methods import get_method

log = logging.getLogger("analysis.validate.compute")

#: the columns :func:`add_limits` adds (only where the rate is known: other runs' tables are unchanged)
LIMIT_COLUMNS = ["arithmetic_limit_ms", "over_limit", "roofline_ms", "over_roofline", "roofline_speedup"]


def resolve_tflops(a, pipe) -> float | None:
    """The rate of ``--matmul-tflops`` (TFLOP/s; measured in the model's dtype where asked), None: no
    limit."""
    value = a.matmul_tflops
    if value == "off" or (value == "auto" and pipe.device.type != "cuda"):
        return None
    if value in ("auto", "measure"):
        rate = matmul_tflops(pipe.device, pipe.dtype)
        log.info("matmul rate of %s in %s: %.3g TFLOP/s", pipe.device, str(pipe.dtype)[6:], rate)
        return rate
    return float(value)


def add_limits(rows: pd.DataFrame, pipe, tflops: float | None, gbps: float | None = None) -> pd.DataFrame:
    """``rows`` with :data:`LIMIT_COLUMNS` (unchanged when ``tflops`` is None); the roofline's bandwidth
    ``gbps`` is measured on the pipeline's device when not given (:func:`litelvlm.cost.bound.device_gbps`);
    ``roofline_speedup``: ``none``'s roofline over the row's, the best speed-up pruning can reach."""
    if tflops is None or rows.empty:
        return rows
    lm = pipe.language_model
    params, layers = decoder_params(lm), len(lm.layers)
    gbps = device_gbps(str(pipe.device)) if gbps is None else gbps
    rows = rows.copy()
    summed = [token_layers(int(r.llm_input_tokens), int(r.seq_len), int(r.prune_layer), layers)
              for r in rows.itertuples()]
    rows["arithmetic_limit_ms"] = [limit_ms(params, layers, n, tflops) for n in summed]
    rows["over_limit"] = rows["paper_prefill_ms"] / rows["arithmetic_limit_ms"]
    rows["roofline_ms"] = [lm_roofline_ms(lm, n // layers, tflops, gbps, n) for n in summed]
    rows["over_roofline"] = rows["paper_prefill_ms"] / rows["roofline_ms"]
    base = rows.loc[[get_method(m).baseline for m in rows["method"]], "roofline_ms"]
    rows["roofline_speedup"] = float(base.iloc[0]) / rows["roofline_ms"] if len(base) else float("nan")
    return rows


def limit_lines(rows: pd.DataFrame, tflops: float | None) -> list[str]:
    """report.md's section on the arithmetic limit and the roofline (empty without a rate)."""
    if tflops is None or "over_limit" not in rows:
        return []
    lines = ["", "## Arithmetic limit and roofline", "",
             f"Matrix-product rate {tflops:.3g} TFLOP/s (``--matmul-tflops``). ``arithmetic_limit_ms`` = 2 x "
             f"the decoder layers' parameters x tokens per layer / that rate; ``roofline_ms`` = the "
             f"larger of that and the decoder's weight bytes / the device's measured copy bandwidth, "
             f"plus attention's causal products at the rate (litelvlm.cost.bound.roofline_ms); "
             f"``over_roofline`` = ``paper_prefill_ms`` / it; ``roofline_speedup`` = none's roofline / "
             f"the row's: the best speed-up pruning can reach. Above {OVERHEAD_BOUND:g}x its roofline a "
             f"run is overhead-bound: per-layer Python overhead and kernel launches, not arithmetic, "
             f"set its time, so its speed-up does not show what pruning saves.", ""]
    for r in rows.itertuples():
        ratio = getattr(r, "over_roofline", r.over_limit)
        tag = " **overhead-bound**" if ratio > OVERHEAD_BOUND else ""
        roof = (f", roofline {r.roofline_ms:.2f} ms ({r.over_roofline:.1f}x; best reachable speed-up "
                f"{r.roofline_speedup:.2f}x)" if "roofline_ms" in rows else "")
        lines.append(f"- {r.method}@{r.budget}: {r.paper_prefill_ms:.2f} ms, limit "
                     f"{r.arithmetic_limit_ms:.2f} ms ({r.arithmetic_limit_ms * tflops / 1e3:.3g} TFLOP at "
                     f"{tflops:.3g} TFLOP/s; {r.over_limit:.1f}x){roof}{tag}")
    return lines


def screen_warning(rows: pd.DataFrame, captured: bool = False) -> str | None:
    """The terminal's overhead-bound line, against the roofline where known (None: none of the rows is, or
    no rate); ``captured``: ``--prefill captured``."""
    if "over_roofline" in rows:
        return screen_note(list(rows["over_roofline"]), captured, "roofline")
    return screen_note(list(rows["over_limit"]), captured) if "over_limit" in rows else None


def account_eager(pipe, run: str) -> None:
    """Put the layer calls that ran eagerly in the last call of a captured prefill on ``run``'s account
    (nothing under the eager prefill); :func:`eager_screen` names them once."""
    if (runner := runner_of(pipe.language_model)) is not None:
        runner.account(run)


def say_eager(pipe) -> None:
    """Name on screen (stderr) what ran eagerly under a captured prefill: one line per reason, naming its runs
    (nothing when every layer call was captured, or under the eager prefill)."""
    runner = runner_of(pipe.language_model)
    for line in eager_lines({} if runner is None else runner.eager_runs):
        print(f"validate: {line}", file=sys.stderr)


__all__ = ["LIMIT_COLUMNS", "account_eager", "add_limits", "say_eager", "limit_lines",
           "resolve_tflops", "screen_warning"]
