"""``validate --prefill`` and the arithmetic limit of its prefills (this project's additions).

* ``--prefill captured``: :mod:`litelvlm.llm.captured` installed on the pipeline's LLM (the layers between
  pruning points as one CUDA graph on cuda, one ``torch.compile``'d function elsewhere); layer calls that ran
  eagerly are named on screen once per reason, with the runs they ran in (:func:`say_eager`).
* ``--matmul-tflops``: the device's matrix-product rate; each row gets ``arithmetic_limit_ms`` (2 x decoder
  parameters x tokens per layer / rate, :mod:`litelvlm.cost.bound`) and ``over_limit`` (``paper_prefill_ms``
  over it); a run above 3x is called overhead-bound on screen and in report.md.
"""

from __future__ import annotations

import logging
import sys

import pandas as pd

from litelvlm.cost.bound import (
    OVERHEAD_BOUND,
    decoder_params,
    limit_ms,
    matmul_tflops,
    screen_note,
    token_layers,
)
from litelvlm.llm.captured import eager_lines, install, runner_of

log = logging.getLogger("analysis.validate.compute")

#: the columns :func:`add_limits` adds (only where the rate is known: other runs' tables are unchanged)
LIMIT_COLUMNS = ["arithmetic_limit_ms", "over_limit"]


def install_prefill(a, pipe) -> dict | None:
    """Install ``--prefill captured`` on ``pipe``'s LLM; its record (None: the eager prefill)."""
    if a.prefill != "captured":
        return None

    return install(pipe.language_model, None if a.capture == "auto" else a.capture).record()


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


def add_limits(rows: pd.DataFrame, pipe, tflops: float | None) -> pd.DataFrame:
    """``rows`` with :data:`LIMIT_COLUMNS` (unchanged when ``tflops`` is None)."""
    if tflops is None or rows.empty:
        return rows
    lm = pipe.language_model
    params, layers = decoder_params(lm), len(lm.layers)
    rows = rows.copy()
    rows["arithmetic_limit_ms"] = [
        limit_ms(params, layers,
                 token_layers(int(r.llm_input_tokens), int(r.seq_len), int(r.prune_layer), layers),
                 tflops) for r in rows.itertuples()]
    rows["over_limit"] = rows["paper_prefill_ms"] / rows["arithmetic_limit_ms"]
    return rows


def limit_lines(rows: pd.DataFrame, tflops: float | None) -> list[str]:
    """report.md's section on the arithmetic limit, and the screen's warning (both empty without a rate)."""
    if tflops is None or "over_limit" not in rows:
        return []
    lines = ["", "## Arithmetic limit", "",
             f"Matrix-product rate {tflops:.3g} TFLOP/s (``--matmul-tflops``). ``arithmetic_limit_ms`` = 2 x "
             "the decoder layers' parameters x tokens per layer / that rate (attention's n^2 products left "
             "out: a lower bound); ``over_limit`` = ``paper_prefill_ms`` / it. Above "
             f"{OVERHEAD_BOUND:g}x a run is overhead-bound: per-layer Python overhead and kernel launches, "
             "not arithmetic, set its time, so its speed-up does not show what pruning saves.", ""]
    for r in rows.itertuples():
        tag = " **overhead-bound**" if r.over_limit > OVERHEAD_BOUND else ""
        lines.append(f"- {r.method}@{r.budget}: {r.paper_prefill_ms:.2f} ms, limit "
                     f"{r.arithmetic_limit_ms:.2f} ms ({r.arithmetic_limit_ms * tflops / 1e3:.3g} TFLOP at "
                     f"{tflops:.3g} TFLOP/s; {r.over_limit:.1f}x){tag}")
    return lines


def screen_warning(rows: pd.DataFrame, captured: bool = False) -> str | None:
    """The terminal's overhead-bound line (None: none of the rows is, or no rate); ``captured``: ``--prefill
    captured``."""
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


__all__ = ["LIMIT_COLUMNS", "account_eager", "add_limits", "say_eager", "install_prefill", "limit_lines",
           "resolve_tflops", "screen_warning"]
