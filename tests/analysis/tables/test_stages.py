"""The time-by-stage table (:mod:`analysis.tables.stages`, this project's measurement) of a run timed by
stage, on hand-made run folders: each stage's ms per method and budget, the whole call's speed-up beside the
LLM's and Amdahl's bound at that LLM speed-up, what a run saved outside the LLM, and a caption giving the
unpruned call's LLM share and the bound on a method that only shortens the LLM; a kernel per block where the
run timed several; and ``tables`` gives it beside the run's efficiency table, only where the run holds
``stages.csv``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.common.runs.run_tree import Run
from analysis.tables.compute import kinds_of
from analysis.tables.stages import stages_table
from tests.analysis.common.measures.test_amdahl import stages


def _run(folder: Path, frame: pd.DataFrame | None, study: str = "validate") -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        frame.to_csv(folder / "stages.csv", index=False)
    config = {"device": "cuda:0", "model_dtype": "bfloat16",
              "stage_timing": {"attn": "sdpa", "prefill": "eager"}}
    identity = {"study": study, "family": "glamm", "model": "glamm-7b-random", "weights": "random"}
    return Run(folder, config, identity)


def test_each_stage_and_the_bound_per_method_and_budget(tmp_path):
    run = _run(tmp_path / "run", stages())
    pd.DataFrame({"method": ["none", "fastv"], "budget": [576, 64], "seq_len": [867, 355]}).to_csv(
        run.folder / "validate.csv", index=False)
    table = stages_table(run, tmp_path, "stages_glamm-7b-random")
    assert list(table.data["method"]) == ["none", "fastv", "tower"]
    shown = table.shown.set_index("Method")
    assert list(table.shown.columns) == ["Method", "K", "LLM tokens", "prepare ms", "vision ms",
                                         "selection ms", "prefill ms", "mask ms", "other ms", "Call ms",
                                         "Speed-up", "LLM speed-up", "Only the LLM",
                                         "Saved outside the LLM ms"]
    assert list(shown["LLM tokens"]) == ["867", "355", "—"]   # validate.csv's seq_len, where the run has it
    assert shown.loc["none", "Speed-up"] == "—" and shown.loc["none", "Call ms"] == "100"
    assert shown.loc["fastv", "Speed-up"] == "1.15×" and shown.loc["fastv", "LLM speed-up"] == "4.00×"
    assert shown.loc["fastv", "Only the LLM"] == "1.18×"
    assert shown.loc["fastv", "Saved outside the LLM ms"] == "-2"
    assert shown.loc["tower", "Saved outside the LLM ms"] == "15"
    assert table.data.loc[1, "bound_at_llm_speedup"] == pytest.approx(1 / (0.8 + 0.2 / 4))
    assert "The LLM is 20% of none's whole call" in table.caption and "at most 1.25×" in table.caption
    assert table.caption.startswith("RANDOM WEIGHTS") and "this project's" in table.caption
    assert table.random and table.blocks == [0, 1]


def test_a_kernel_per_block(tmp_path):
    table = stages_table(_run(tmp_path / "run", stages(("eager", "sdpa")), "efficiency"), tmp_path, "s")
    assert list(table.shown["Attention"]) == ["eager"] * 3 + ["sdpa"] * 3 and table.blocks == [0, 1, 3, 4]


def test_tables_gives_it_only_where_the_run_was_timed_by_stage(tmp_path):
    assert kinds_of(_run(tmp_path / "a", stages())) == ["efficiency", "stages"]
    assert kinds_of(_run(tmp_path / "b", None)) == ["efficiency"]
    identity = {"study": "grounding", "family": "glamm", "model": "m", "weights": "random"}
    grounding = Run(tmp_path / "c", {}, identity)
    assert kinds_of(grounding) == ["grounding"]
