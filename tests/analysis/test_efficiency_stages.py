"""``litelvlm efficiency``'s time by stage: where it times the pipeline end to end (``--e2e chain``, the
default on CUDA), ``stages.csv`` per attention kernel, method, budget and stage, and ``stages.png``; where it
sums the parts (the default on a CPU) neither, since no whole call ran."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.efficiency import measure
from litelvlm.cli import main
from litelvlm.cost.stages import COLUMNS, time_stages
from tests.fixtures.spies import forwards_seen

ARGS = ["efficiency", "--arch", "tiny", "--methods", "none", "litelvlm", "--budgets", "64", "--attn", "sdpa",
        "--warmup", "0", "--repeats", "1", "--threads", "1"]


def test_the_chain_is_timed_by_stage_and_a_run_summing_parts_drops_its_files(tmp_path, capsys):
    assert main([*ARGS, "--e2e", "chain", "--out", str(tmp_path)]) == 0
    # where the savings land: none's LLM share and Amdahl's bound, on screen, in a table and a figure
    said = capsys.readouterr().out
    assert "efficiency: Amdahl (this project's reading): the LLM is " in said
    assert "efficiency:   litelvlm@64 [sdpa]: " in said and "if only its LLM" in said
    amdahl = pd.read_csv(tmp_path / "amdahl.csv")
    runs = list(amdahl[["attn", "method", "budget"]].itertuples(index=False, name=None))
    assert runs == [("sdpa", "litelvlm", 64)]
    p = amdahl["llm_share_of_base"].iloc[0]
    assert 0 < p < 1 and amdahl["bound_llm_only"].iloc[0] == pytest.approx(1 / (1 - p))
    assert (tmp_path / "amdahl.png").exists()
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert list(stages.columns) == ["attn", "method", "budget", "stage", "ms", "share"]
    assert set(stages["attn"]) == {"sdpa"} and set(stages["method"]) == {"none", "litelvlm"}
    for _, run in stages.groupby(["method", "budget"]):
        ms = run.set_index("stage")["ms"]
        assert list(ms.index) == list(COLUMNS) and ms["total"] > 0
        assert ms.drop("total").sum() == pytest.approx(ms["total"])
    assert (tmp_path / "stages.png").exists()
    timing = json.loads((tmp_path / "config.json").read_text())["stage_timing"]
    assert timing["prefill"] == "eager" and timing["dtype"] in ("float32", "bfloat16")
    # the same folder, the parts summed: no whole call ran, and the earlier run's stage files go
    assert main([*ARGS, "--e2e", "parts", "--no-figures", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "efficiency.csv").exists()
    assert not any((tmp_path / name).exists() for name in ("stages.csv", "stages.png", "amdahl.csv",
                                                            "amdahl.png"))
    assert "stage_timing" not in json.loads((tmp_path / "config.json").read_text())


def test_with_a_rate_each_stage_of_the_chain_gets_its_roofline(tmp_path):
    """``--matmul-tflops``: one counted chain per run gives each stage's FLOPs, weight bytes and roofline
    (``stages.csv``), the whole call's the sum of its stages'."""
    rate = ["--matmul-tflops", "0.05"]
    assert main([*ARGS, "--e2e", "chain", *rate, "--no-figures", "--out", str(tmp_path)]) == 0
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert list(stages.columns) == ["attn", "method", "budget", "stage", "ms", "share", "flops",
                                    "weight_bytes", "roofline_ms", "over_roofline"]
    for _, run in stages.groupby(["method", "budget"]):
        run = run.set_index("stage")
        assert run.loc["total", "roofline_ms"] == pytest.approx(run["roofline_ms"].drop("total").sum())
        assert (run.loc[["vision", "prefill", "mask"], "flops"] > 0).all()
    prefill = stages[stages["stage"] == "prefill"].set_index("method")["flops"]
    assert prefill["litelvlm"] < prefill["none"]
    assert "stage_total_roofline_ms" in pd.read_csv(tmp_path / "efficiency.csv")


def test_stage_costs_count_each_stage_of_the_chain_without_a_rate(tmp_path):
    """``--stage-costs`` without a rate: each stage's FLOPs and weight bytes of one counted chain, no
    roofline."""
    assert main([*ARGS, "--e2e", "chain", "--stage-costs", "--no-figures", "--out", str(tmp_path)]) == 0
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert list(stages.columns) == ["attn", "method", "budget", "stage", "ms", "share", "flops",
                                    "weight_bytes"]
    prefill = stages[stages["stage"] == "prefill"].set_index("method")["flops"]
    assert prefill["litelvlm"] < prefill["none"]
    assert "stage_total_roofline_ms" not in pd.read_csv(tmp_path / "efficiency.csv")


def test_a_method_pruning_inside_the_tower_is_charged_as_in_eval_grounding(tmp_path):
    """The leaderboard's accounting in ``efficiency``'s chain too: IPCV after block 2 of UniPixel's tiny
    tower runs there (its selection is the tower's own run) and is charged its own tower run in place of the
    preparation's full one, so its vision stage counts fewer FLOPs than ``none``'s."""
    assert main(["efficiency", "--model", "unipixel-tiny-random:0", "--methods", "none,ipcv", "--budgets",
                 "8", "--ipcv-layer", "2", "--ipcv-as-layers", "1", "--attn", "sdpa", "--e2e", "chain",
                 "--stage-costs", "--warmup", "0", "--repeats", "1", "--threads", "1", "--no-figures",
                 "--out", str(tmp_path)]) == 0
    stages = pd.read_csv(tmp_path / "stages.csv")
    vision = stages[stages["stage"] == "vision"].set_index("method")
    assert vision.loc["ipcv", "flops"] < vision.loc["none", "flops"]


def test_a_tower_method_is_counted_on_glamms_clip_in_place_of_the_full_run(tmp_path):
    """``--flops-only`` on GLaMM's CLIP tower: IPCV runs there (it maps onto the LLM inputs through the row's
    own projector) and is charged its tower run in place of the trace's full one, as the stage costs charge
    it. On the tiny tower (one block before the feature layer, IPCV's layer beyond it) nothing is pruned, so
    its run costs the full run's FLOPs and the whole call ``none``'s."""
    assert main(["efficiency", "--arch", "tiny", "--methods", "none,ipcv", "--budgets", "64", "--flops-only",
                 "--no-figures", "--attn", "sdpa", "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "efficiency.csv").set_index("method")
    assert df.loc["ipcv", "selector_tflops"] > 0
    assert df.loc["ipcv", "clip_tflops"] < df.loc["none", "clip_tflops"]
    assert df.loc["ipcv", "clip_tflops"] + df.loc["ipcv", "selector_tflops"] == pytest.approx(
        df.loc["none", "clip_tflops"], rel=1e-12)
    assert df.loc["ipcv", "e2e_tflops"] == pytest.approx(df.loc["none", "e2e_tflops"], rel=1e-12)


def test_a_selection_on_the_llms_inputs_is_timed_as_the_selector(tmp_path):
    """Timed by parts on the CPU, DivPrune's and CDPruner's selection on the LLM's inputs is ``selector_ms``
    (it was inside ``prefill_ms``, with a selector overhead of 0), and the row's sum stays its parts'."""
    assert main(["efficiency", "--arch", "tiny", "--methods", "none,divprune,cdpruner", "--budgets", "16",
                 "--attn", "sdpa", "--warmup", "0", "--repeats", "1", "--threads", "1", "--no-figures",
                 "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "efficiency.csv").set_index("method")
    assert df.loc["none", "selector_ms"] == 0
    parts = ["clip_ms", "text_ms", "selector_ms", "sam_ms"]
    for method in ("divprune", "cdpruner"):
        assert df.loc[method, "selector_ms"] > 0, method
        assert df.loc[method, "e2e_ms"] == pytest.approx(df.loc[method, parts].sum() + df.loc[method,
                                                                                              "prefill_ms"])


def test_a_tower_part_less_the_full_run_is_no_time_below_zero(tmp_path, monkeypatch):
    """Summing the parts, a tower method's vision part is the vision forward less the preparation's tower run
    (the vision stage of the image's forwards made again): on Qwen2.5-VL the two are the same work, so their
    medians' difference is noise around 0; a part is no time below 0 (here the preparation's run timed far
    above the forward), and the row's sum stays its parts'."""
    real = measure.preparation_tower_ms
    monkeypatch.setattr(measure, "preparation_tower_ms", lambda pipe, fn: real(pipe, fn) + 1000.0)
    assert main(["efficiency", "--model", "unipixel-tiny-random:0", "--methods", "ipcv", "--budgets", "16",
                 "--ipcv-layer", "2", "--ipcv-as-layers", "1", "--attn", "sdpa", "--warmup", "0", "--repeats",
                 "1", "--threads", "1", "--no-figures", "--out", str(tmp_path)]) == 0
    row = pd.read_csv(tmp_path / "efficiency.csv").set_index("method").loc["ipcv"]
    assert row["vision_ms"] == 0.0
    parts = ["vision_ms", "prompt_ms", "clip_ms", "text_ms", "selector_ms", "sam_ms"]
    assert row["e2e_ms"] == pytest.approx(row[parts].sum() + row["prefill_ms"])


def test_a_tower_method_is_timed_by_its_own_run_in_place_of_the_full_one(tmp_path):
    """Summing the parts (the CPU default), a method running UniPixel's tiny tower itself is charged its own
    run as its selector, IPCV alone and composed with FastV alike (the composition's run was not timed), and
    its vision part less the preparation's run of the tower: the accounting of its FLOPs and of the stage
    costs."""
    assert main(["efficiency", "--model", "unipixel-tiny-random:0", "--methods", "none,ipcv,ipcv+fastv",
                 "--budgets", "16", "--ipcv-layer", "2", "--ipcv-as-layers", "1", "--ipcv-llm-layer", "1",
                 "--attn", "sdpa", "--warmup", "0", "--repeats", "1", "--threads", "1", "--no-figures",
                 "--out", str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "efficiency.csv").set_index("method")
    parts = ["vision_ms", "prompt_ms", "clip_ms", "text_ms", "selector_ms", "sam_ms"]
    for method in ("ipcv", "ipcv+fastv"):
        assert df.loc[method, "selector_ms"] > 0, method
        assert df.loc[method, "vision_ms"] < df.loc["none", "vision_ms"], method
        assert df.loc[method, "e2e_ms"] == pytest.approx(df.loc[method, parts].sum() + df.loc[method,
                                                                                              "prefill_ms"])
    assert df.loc["ipcv", "vision_ms"] == df.loc["ipcv+fastv", "vision_ms"]
    assert df.loc["none", "selector_ms"] == 0


def test_a_chain_whose_rounds_lie_twofold_apart_is_named_unsteady(tmp_path, capsys, monkeypatch):
    """Each round of the chain's whole call is kept (``stage_total_ms_rounds`` in efficiency.csv), and a run
    whose slowest round took twice its fastest or more is named on the screen, as ``validate`` names it:
    here each run's first call of the stage timer is made to report 3x its second's. IPCV (running GLaMM's
    CLIP tower itself) is timed less the image's forwards made again, as the chain made them."""
    calls: list[dict] = []
    seen = forwards_seen(monkeypatch, measure, "less_tower_ms")

    def uneven(pipe, fn):
        out, ms = time_stages(pipe, fn)
        calls.append(ms)
        first = len(calls) % 2 == 1   # a run's two calls: its first, then its second with the first's times
        return out, {k: v * 3 for k, v in ms.items()} if first else dict(calls[-2])

    monkeypatch.setattr(measure, "time_stages", uneven)
    args = [a if a != "1" or i != ARGS.index("--repeats") + 1 else "2" for i, a in enumerate(ARGS)]
    args[args.index("litelvlm")] = "litelvlm,ipcv"
    assert main([*args, "--e2e", "chain", "--no-figures", "--out", str(tmp_path)]) == 0
    rows = pd.read_csv(tmp_path / "efficiency.csv")
    assert all(len(kept.split()) == 2 for kept in rows["stage_total_ms_rounds"])
    said = capsys.readouterr().out
    assert "efficiency: unsteady: none@" in said and "efficiency: unsteady: litelvlm@64's whole call" in said
    assert "(3.0x)" in said
    assert seen == ["PreparedImage", "PreparedImage"]   # the image's forwards, each of IPCV's two calls
