"""The time by stage's table, headline and figure (``analysis.common.presentation.stage_plots``):
``stages.csv`` gains each stage's roofline where the run has rates, and only then; the headline puts the whole
call's speed-up beside the prefill's, each with its roofline ratio; ``stages.png`` stays legible for 1, 5 and
101 runs (no text over another, none past the canvas, no legend over the bars, every text readable in print),
says what each stage holds, draws each run's whole-call roofline, and its title names the attention kernel and
the prefill path."""

from __future__ import annotations

import math
import types

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from analysis.common.presentation.stage_plots import (  # noqa: E402
    STAGE_FLOPS,
    STAGE_MS,
    STAGE_ROOFLINE,
    STAGE_WEIGHT_BYTES,
    plot_stages,
    run_label,
    speedup_lines,
    stages_frame,
    timing_record,
)
from litelvlm.cost.stage_count import HOST_STAGES  # noqa: E402
from litelvlm.cost.stages import COLUMNS, OTHER, STAGES, TOTAL  # noqa: E402
from litelvlm.llm.captured import ATTR
from litelvlm.lvlm.encoders import ATTR as ENCODERS_ATTR  # noqa: E402
from tests.figure_checks import (  # noqa: E402
    legends_over_data,
    overlapping_texts,
    texts_past_canvas,
    unreadable_texts,
)

#: milliseconds of each stage of ``none`` (its whole call 100 ms) and each stage's roofline (ms)
MS = {"prepare": 4.0, "vision": 20.0, "selection": 0.0, "prefill": 30.0, "decode": 0.0, "mask": 40.0}
ROOF = {"prepare": 0.0, "vision": 5.0, "selection": 0.0, "prefill": 10.0, "decode": 0.0, "mask": 4.0,
        OTHER: 1.0}
#: ``none``'s whole-call roofline: the sum of its stages'
CALL_ROOF = sum(ROOF.get(s, 0.0) for s in (*STAGES, OTHER))


def _row(method: str, budget: int, scale: float = 1.0, roofline: bool = True) -> dict:
    """One run's row: ``none``'s stages, the prefill and its roofline ``scale``d."""
    ms = {s: MS.get(s, 1.0) * (scale if s == "prefill" else 1.0) for s in STAGES}
    ms[OTHER] = 6.0
    ms[TOTAL] = sum(ms.values())
    row = {"method": method, "budget": budget, **{STAGE_MS[s]: ms[s] for s in COLUMNS}}
    if roofline:
        roof = {s: ROOF.get(s, 0.0) * (scale if s == "prefill" else 1.0) for s in (*STAGES, OTHER)}
        roof[TOTAL] = sum(roof.values())
        row |= {STAGE_ROOFLINE[s]: roof[s] for s in COLUMNS}
        row |= {STAGE_FLOPS[s]: 1e9 for s in COLUMNS} | {STAGE_WEIGHT_BYTES[s]: 1e6 for s in COLUMNS}
    return row


def _rows(runs: int, roofline: bool = True) -> pd.DataFrame:
    """``none`` and ``runs - 1`` pruned runs (a few methods at several budgets each)."""
    out = [_row("none", 576, roofline=roofline)]
    methods = ["litelvlm", "fastv", "random", "divprune", "sparsevlm", "dart", "vscan"]
    budgets = [576, 448, 384, 320, 288, 256, 224, 192, 160, 128, 96, 64, 48, 32, 16]
    for i in range(runs - 1):
        k = budgets[i % len(budgets)]
        out.append(_row(methods[i // len(budgets)], k, k / 576, roofline))
    return pd.DataFrame(out)


CONFIG = {"stage_timing": {"attn": "sdpa", "prefill": "captured", "capture": "fused", "dtype": "bfloat16",
                           "device": "NVIDIA H100 80GB HBM3"}}


def test_stages_csv_gains_the_rooflines_only_where_the_run_has_rates():
    plain = stages_frame(_rows(2, roofline=False))
    assert list(plain.columns) == ["method", "budget", "stage", "ms", "share"]
    frame = stages_frame(_rows(2))
    assert list(frame.columns) == ["method", "budget", "stage", "ms", "share", "flops", "weight_bytes",
                                   "roofline_ms", "over_roofline"]
    none = frame[frame["method"] == "none"].set_index("stage")
    assert list(none.index) == list(COLUMNS)
    assert none.loc["prefill", "over_roofline"] == pytest.approx(30.0 / 10.0)
    assert none.loc[TOTAL, "roofline_ms"] == pytest.approx(CALL_ROOF)
    assert none.loc[TOTAL, "over_roofline"] == pytest.approx(none.loc[TOTAL, "ms"] / CALL_ROOF)
    for stage in {"selection", "decode", *HOST_STAGES} & set(none.index):  # no roofline (0): no ratio
        assert math.isnan(none.loc[stage, "over_roofline"])


def test_the_headline_puts_the_whole_call_beside_the_prefill():
    frame = stages_frame(pd.DataFrame([_row("none", 576), _row("litelvlm", 192, 1 / 3)]))
    lite = frame[frame["method"] == "litelvlm"].set_index("stage")
    none = frame[frame["method"] == "none"].set_index("stage")
    prefill = 30.0 / lite.loc["prefill", "ms"]
    call = none.loc[TOTAL, "ms"] / lite.loc[TOTAL, "ms"]
    roof = CALL_ROOF / lite.loc[TOTAL, "roofline_ms"]
    over = lite.loc[TOTAL, "ms"] / lite.loc[TOTAL, "roofline_ms"]
    assert speedup_lines(frame) == [f"litelvlm@192: prefill {prefill:.2f}x (roofline 3.00x), whole call "
                                    f"{call:.2f}x (roofline {roof:.2f}x; call at {over:.1f}x its roofline)"]
    plain = stages_frame(pd.DataFrame([_row("none", 576, roofline=False),
                                       _row("litelvlm", 192, 1 / 3, roofline=False)]))
    assert speedup_lines(plain) == [f"litelvlm@192: prefill {prefill:.2f}x, whole call {call:.2f}x"]
    assert speedup_lines(plain.iloc[:0]) == []
    # with the runs' sequence lengths, each line names them (a ratio depends on the prompt's length)
    lengths = {("none", 576): 867, ("litelvlm", 192): 483}
    assert speedup_lines(plain, lengths=lengths) == [
        f"litelvlm@192: prefill {prefill:.2f}x, whole call {call:.2f}x (sequence 867 -> 483 tokens)"]


def _panels(fig) -> list:
    """The figure's panels of bars (the legend's row has no axis drawn)."""
    return [ax for ax in fig.axes if ax.axison]


@pytest.mark.parametrize("runs", [1, 5, 101])
def test_the_figure_stays_legible_for_any_number_of_runs(runs):
    frame = stages_frame(_rows(runs))
    fig = plot_stages(frame, CONFIG, "glamm-7b-random")
    try:
        assert overlapping_texts(fig) == []
        assert texts_past_canvas(fig) == []
        assert legends_over_data(fig) == []
        assert unreadable_texts(fig) == []
        title = fig._suptitle.get_text()
        assert "LLM attention: sdpa" in title and "prefill: captured" in title and "CUDA graph" in title
        ax = _panels(fig)[0]
        assert [t.get_text() for t in ax.get_yticklabels()][0] == "none"
        assert len(ax.get_yticklabels()) == runs
        roofs = [ln for ln in ax.get_lines() if "roofline" in ln.get_label()]
        assert len(roofs) == 1 and np.isfinite(roofs[0].get_xdata()).sum() == runs
        legend = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
        assert any(t.startswith("vision: ") for t in legend)
        assert any(t.startswith("prefill: ") for t in legend)
        assert any("roofline" in t for t in legend)
        assert not any(t.startswith(("decode", "selection")) for t in legend)  # nothing drawn, nothing said
    finally:
        plt.close(fig)


def test_one_panel_per_attention_kernel_each_named():
    rows = pd.concat([_rows(3).assign(attn="eager"), _rows(3).assign(attn="sdpa")], ignore_index=True)
    frame = stages_frame(rows, ("attn", "method", "budget"))
    config = {"stage_timing": {"attn": "sdpa", "prefill": "eager", "dtype": "float32", "device": "CPU"}}
    fig = plot_stages(frame, config, "tiny-random")
    try:
        assert [ax.get_title() for ax in _panels(fig)] == ["LLM attention: eager", "LLM attention: sdpa"]
        assert "prefill: eager" in fig._suptitle.get_text()
        assert overlapping_texts(fig) == [] and texts_past_canvas(fig) == []
    finally:
        plt.close(fig)


@pytest.mark.parametrize("record, attention, prefill", [
    ({"attn": "eager", "prefill": "eager"}, "LLM attention: eager (explicit softmax",
     "prefill: eager (each decoder layer called from Python)"),
    ({"attn": "sdpa", "prefill": "captured", "capture": "fused", "device": "NVIDIA H100"},
     "LLM attention: sdpa (PyTorch's scaled_dot_product_attention)", "prefill: captured (fused:"),
    ({"attn": "sdpa", "prefill": "captured", "capture": "compile", "device": "CPU"}, "LLM attention: sdpa",
     "prefill: captured (torch.compile of the decoder-layer stack)"),
    ({"attn": "sdpa", "prefill": "compiled"}, "LLM attention: sdpa", "prefill: compiled (torch.compile"),
])
def test_the_title_names_the_attention_kernel_and_the_prefill_path(record, attention, prefill):
    attn, path = run_label({"stage_timing": record})
    assert attn.startswith(attention) and path.startswith(prefill)


def test_the_timing_record_names_the_capture_and_a_compiled_prefill():
    config = types.SimpleNamespace(_attn_implementation="sdpa")
    layers = [torch.nn.Linear(2, 2) for _ in range(2)]
    lm = types.SimpleNamespace(config=config, layers=layers)
    pipe = types.SimpleNamespace(language_model=lm, numerics=types.SimpleNamespace(attn="sdpa"),
                                 dtype=torch.float32, device=torch.device("cpu"),
                                 compiled={"encoders": "graph"})   # a record of the captured encoders
    assert timing_record(pipe)["prefill"] == "eager" and "capture" not in timing_record(pipe)
    for layer in layers:   # validate --compile: each layer's forward compiled in place
        layer.forward = torch.compile(type(layer).forward.__get__(layer), backend="eager")
    assert timing_record(pipe)["prefill"] == "compiled"
    lm.__dict__[ATTR] = types.SimpleNamespace(capture="fused", backend="inductor")
    assert timing_record(pipe)["prefill"] == "captured" and timing_record(pipe)["capture"] == "fused"
    lm.__dict__[ATTR] = types.SimpleNamespace(capture="compile", backend="eager")
    assert timing_record(pipe)["capture"] == "compile-eager"
    assert timing_record(pipe)["encoders"] == "eager"   # none installed
    pipe.__dict__[ENCODERS_ATTR] = types.SimpleNamespace(
        mode="graph", record=lambda: {"captured_encoders": ["CLIPVisionModel"]}, eager_reasons=dict)
    assert timing_record(pipe)["encoders"] == "graph"


def test_the_timing_record_names_the_captured_encoders_and_why_calls_ran_eagerly():
    """Under captured encoders the record names them and counts, per reason, the calls that ran eagerly (here
    one under autograd): what tells a reader of a GPU run which tower ran eagerly and why."""
    from litelvlm.lvlm.encoders import CapturedEncoders

    vision, text = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    lm = types.SimpleNamespace(config=types.SimpleNamespace(_attn_implementation="eager"), layers=[])
    pipe = types.SimpleNamespace(language_model=lm, numerics=types.SimpleNamespace(attn="eager"),
                                 dtype=torch.float32, device=torch.device("cpu"))
    pipe.__dict__[ENCODERS_ATTR] = CapturedEncoders([vision, text], "compile-eager")
    x = torch.ones(1, 2)
    with torch.no_grad():
        vision(x), text(x)
    with torch.enable_grad():
        vision(x)
    record = timing_record(pipe)
    assert record["encoders"] == "compile-eager" and record["encoders_captured"] == ["Linear"]
    assert record["encoders_eager"] == {"Linear: autograd enabled": 1}
