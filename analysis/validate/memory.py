"""Whole-model memory of ``validate`` runs, and the paper's memory claims about pruning and quantization.

One ``validate`` folder holds one precision (``--quantize``); its ``memory.csv`` has, per (method, budget),
the weights' storage bytes (every module of the pipeline, :mod:`analysis.validate.weights`: GLaMM and CLIP, or
Qwen2.5-VL, seg head and SAM 2; quantized weights by what they hold:
``litelvlm.machine.memory.storage_bytes``), the run's activation peak and their sum, ``peak_mb``: the whole
model's memory during the call, the figure the paper's appendix compares (on CUDA the activation peak is the
allocator's, above the weights).
:func:`memory_claims` sets several folders (bf16, int8, nf4) beside the appendix's two claims.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.common.measures.paper_efficiency import PAPER_BY_METHOD
from litelvlm.methods import BASELINE, get_method, method_names

#: the method whose memory the paper's claims are about (the paper's own)
PAPER_METHOD = next(iter(PAPER_BY_METHOD))

#: the appendix's claims: pruning alone (LiteLVLM at these budgets against all 576 tokens) changes the whole
#: model's memory by at most this share; 8-bit weights cut it by about this share (judged within ``INT8_TOL``)
PRUNING_ONLY_MAX_CHANGE = 0.01
PRUNING_BUDGETS = (192, 32)
INT8_REDUCTION = 0.40
INT8_TOL = 0.05

COLUMNS = ["quantize", "method", "budget", "weights_mb", "activation_mb", "llm_activation_mb", "peak_mb",
           "paper_def_activation_gib"]


def memory_frame(rows: pd.DataFrame, ratios: pd.DataFrame, weights_mb: float, quantize: str,
                 none_paper_gib: float | None = None) -> pd.DataFrame:
    """Per (method, budget): weights, activation peaks, their sum (``peak_mb``) and the paper's analytic
    storing activation (``paper_def_activation_gib``; ``none_paper_gib`` for ``none``, which ``ratios``
    lacks)."""
    m = rows[["method", "budget", "activation_mb", "llm_activation_mb"]].merge(
        ratios[["method", "budget", "paper_def_activation_gib"]], on=["method", "budget"], how="left")
    if none_paper_gib is not None:
        baselines = {x for x in method_names() if get_method(x).baseline}
        m.loc[m["method"].isin(baselines), "paper_def_activation_gib"] = none_paper_gib
    m.insert(0, "quantize", quantize)
    m.insert(3, "weights_mb", float(weights_mb))
    m["peak_mb"] = m["weights_mb"] + m["activation_mb"]
    return m[COLUMNS]


def read_memory(folders: list[str | Path]) -> pd.DataFrame:
    """The ``memory.csv`` of several ``validate`` folders, one table."""
    return pd.concat([pd.read_csv(Path(f) / "memory.csv") for f in folders], ignore_index=True)


def _peak(mem: pd.DataFrame, quantize: str, method: str, budget: int) -> float | None:
    hit = mem[(mem["quantize"] == quantize) & (mem["method"] == method) & (mem["budget"] == budget)]
    return None if hit.empty else float(hit["peak_mb"].iloc[0])


def memory_claims(mem: pd.DataFrame, full: int = 576) -> pd.DataFrame:
    """The appendix's memory claims judged on ``mem`` (:func:`read_memory`): claim, precision, measured, the
    paper's figure, MET/MISSED ('not measured' where a run is missing; the pruning-alone change of a quantized
    model is listed beside the claim as 'no claim')."""
    out = []
    for q in sorted(mem["quantize"].unique()):
        base = _peak(mem, q, BASELINE, full)
        for k in PRUNING_BUDGETS:
            pk = _peak(mem, q, PAPER_METHOD, k)
            if base is None or pk is None:
                out.append({"claim": f"pruning alone, LiteLVLM at {k}", "quantize": q, "measured": "",
                            "paper": f"within {PRUNING_ONLY_MAX_CHANGE:.0%}", "verdict": "not measured"})
                continue
            change = (base - pk) / base
            verdict = "MET" if abs(change) <= PRUNING_ONLY_MAX_CHANGE else "MISSED"
            out.append({"claim": f"pruning alone, LiteLVLM at {k}", "quantize": q,
                        "measured": f"{change:.2%} ({base - pk:.0f} MB of {base:.0f} MB)",
                        "paper": f"within {PRUNING_ONLY_MAX_CHANGE:.0%}" if q == "none" else
                "(the claim is about the unquantized model)",
                        "verdict": verdict if q == "none" else "no claim"})
    ref, q8 = _peak(mem, "none", BASELINE, full), _peak(mem, "int8", BASELINE, full)
    row = {"claim": "8-bit weights, all tokens", "quantize": "int8",
           "paper": f"about {INT8_REDUCTION:.0%} lower (judged {INT8_REDUCTION - INT8_TOL:.0%}-"
                    f"{INT8_REDUCTION + INT8_TOL:.0%})"}
    if ref is None or q8 is None:
        out.append({**row, "measured": "", "verdict": "not measured"})
    else:
        red = 1 - q8 / ref
        out.append({**row, "measured": f"{red:.1%} lower ({q8:.0f} MB against {ref:.0f} MB)",
                    "verdict": "MET" if abs(red - INT8_REDUCTION) <= INT8_TOL else "MISSED"})
    return pd.DataFrame(out, columns=["claim", "quantize", "measured", "paper", "verdict"])


__all__ = ["COLUMNS", "memory_claims", "memory_frame", "read_memory"]
