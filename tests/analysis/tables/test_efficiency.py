"""The efficiency table's rows (:mod:`analysis.tables.efficiency`), on hand-made run folders: a video family's
arrangements beside the method (the unpruned model's row stays the baseline), ``none``'s FLOPs of a
``validate`` run from its ratios, and the numbers' format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.common.runs.run_tree import Run
from analysis.tables.efficiency import efficiency_rows, number, validate_rows, wide


def _run(folder: Path, study: str, config: dict | None = None) -> Run:
    identity = {"study": study, "family": "glamm", "model": "tiny", "weights": "random"}
    return Run(folder, config or {}, identity)


def test_arrangements_are_said_beside_the_pruned_methods(tmp_path):
    pd.DataFrame({"method": ["none", "litelvlm", "litelvlm"], "budget": [576, 16, 16],
                  "arrangement": ["pool", "pool", "direct"], "paper_tflops": [2.0, 1.0, 0.5],
                  "paper_activation_gib": [4.0, 2.0, 1.0]}).to_csv(tmp_path / "efficiency.csv", index=False)
    rows = efficiency_rows(_run(tmp_path, "efficiency"))
    assert list(rows["method"]) == ["none", "litelvlm (pool)", "litelvlm (direct)"]
    assert rows["prefill_ms"].isna().all()   # a --flops-only run: no times
    data, shown, blocks = wide(rows, cuda=False)
    assert list(shown["K"]) == ["all (576)", "16", "16"] and blocks == [0, 1]
    assert list(shown["TFLOPs"]) == ["2", "1 (2.0×)", "0.5 (4.0×)"] and list(data["tflops_none_over"]) == [
        1.0, 2.0, 4.0]


def test_validate_gives_none_its_flops_from_the_ratios(tmp_path):
    pd.DataFrame({"method": ["none", "litelvlm"], "budget": [576, 64], "paper_prefill_ms": [10.0, 2.0],
                  "cuda_time_reading_ms": [20.0, 5.0]}).to_csv(tmp_path / "validate.csv", index=False)
    pd.DataFrame({"quantize": ["none", "none"], "method": ["none", "litelvlm"], "budget": [576, 64],
                  "paper_def_activation_gib": [3.0, 1.0]}).to_csv(tmp_path / "memory.csv", index=False)
    pd.DataFrame({"method": ["litelvlm"], "budget": [64], "paper_def_tflops": [0.25],
                  "paper_def_flops_speedup": [4.0]}).to_csv(tmp_path / "ratios.csv", index=False)
    rows = validate_rows(_run(tmp_path, "validate", {"quantize": "none"}))
    assert list(rows["tflops"]) == [1.0, 0.25] and list(rows["activation_gib"]) == [3.0, 1.0]
    assert number(2130.4) == "2130" and number(6.5612e-06) == "6.56e-06" and number(26.25) == "26.2"
