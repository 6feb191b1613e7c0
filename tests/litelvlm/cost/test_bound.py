"""The arithmetic limit of a prefill and the overhead-bound label (``litelvlm.cost.bound``; ``validate`` and
``efficiency`` with ``--matmul-tflops``), and the refusals of ``--prefill`` / ``--capture`` /
``--matmul-tflops``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from litelvlm.cost.bound import (
    OVERHEAD_BOUND,
    bound_note,
    copy_gbps,
    decoder_bytes,
    decoder_params,
    limit_ms,
    matmul_tflops,
    roofline_ms,
    screen_note,
    token_layers,
)


def _lm(layers: int = 4, width: int = 8):
    """A stand-in LLM: ``layers`` decoder layers of one (width x width) linear each (width^2 + width
    parameters)."""
    return SimpleNamespace(layers=torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers)),
                           config=SimpleNamespace(hidden_size=width))


def test_the_limit_is_two_parameters_tokens_over_the_rate():
    """2 x parameters x tokens / rate: the report's Sa2VA-3B figure (about 3e9 decoder parameters, 612 tokens,
    an H200's 790 TFLOP/s) is about 4.6 ms; a method pruning at layer K counts its tokens per layer."""
    assert limit_ms(36 * 83_000_000, 36, 36 * 612, 790.0) == pytest.approx(2 * 2.988e9 * 612 / 790e12 * 1e3)
    assert 4.5 < limit_ms(36 * 83_000_000, 36, 36 * 612, 790.0) < 4.7
    assert token_layers(612, 264, 0, 36) == 36 * 264                    # pruned before the LLM
    assert token_layers(612, 164, 2, 36) == 2 * 612 + 34 * 164           # FastV at K=2
    assert math.isnan(limit_ms(10, 2, 5, 0.0))
    assert decoder_params(_lm(4, 8)) == 4 * (64 + 8)


def test_overhead_bound_above_three_times_the_limit():
    assert bound_note(3.0 * 2.0, 2.0) is None                           # at 3x: not yet
    assert bound_note(23.4, 4.6) == "overhead-bound (5.1x its arithmetic limit)"
    assert bound_note(float("nan"), 4.6) is None and bound_note(10.0, float("nan")) is None
    note = screen_note([5.1, 11.7, 1.2])
    assert note.startswith("overhead-bound: 2 of 3 prefills took 5.1-11.7x") and "--prefill captured" in note
    assert "--prefill captured" not in screen_note([5.1], captured=True)
    # captured, the launches are gone: the screen does not blame them (VideoGLaMM's 3,424-token prefill on an
    # H100 took 242 ms eager and 241 ms captured, 7.4x its limit)
    captured = screen_note([7.4], captured=True)
    assert "kernel launches" not in captured and "attention's n^2" in captured
    assert screen_note([1.2, OVERHEAD_BOUND]) is None and screen_note([float("nan")]) is None


def test_the_roofline_is_compute_or_weight_read_whichever_is_longer_plus_attention():
    """GLaMM-7B's decoder (6.48e9 parameters, 32 layers, d = 4096) on an H100 (770 TFLOP/s, 3,000 GB/s of
    copy bandwidth): at 713 tokens compute dominates (12.0 ms + 0.35 ms of attention); at 201 tokens (LiteLVLM
    at 64) the 13 GB weight read (4.32 ms) is the floor, so the best reachable speed-up of @64 over none is
    about 2.8x, not the FLOPs' 3.5x."""
    p, rate, bw = 6.48e9, 770.0, 3000.0
    full, short = roofline_ms(p, 32, 713, 4096, rate, bw), roofline_ms(p, 32, 201, 4096, rate, bw)
    compute = 2 * p * 713 / (rate * 1e12) * 1e3
    attention = 2 * 713 ** 2 * 4096 * 32 / (rate * 1e12) * 1e3
    assert full == pytest.approx(compute + attention) and 12.0 < full < 12.5
    assert short == pytest.approx(2 * p / (bw * 1e9) * 1e3 + 2 * 201 ** 2 * 4096 * 32 / (rate * 1e12) * 1e3)
    assert 2.7 < full / short < 2.9
    assert limit_ms(p, 32, 32 * 713, rate) / limit_ms(p, 32, 32 * 201, rate) > 3.5
    # a method pruning inside the LLM: its tokens summed over the layers
    fastv = roofline_ms(p, 32, 201, 4096, rate, bw, layer_tokens=2 * 713 + 30 * 201)
    assert short < fastv < full
    assert roofline_ms(p, 32, 713, 4096, rate, bw, weight_bytes=p) == pytest.approx(full)  # int8: compute
    assert math.isnan(roofline_ms(p, 32, 713, 4096, rate, 0.0)) and math.isnan(roofline_ms(p, 32, 1, 1, 0, 1))
    assert decoder_bytes(_lm(4, 8)) == 4 * (64 + 8) * 4  # float32


def test_the_copy_bandwidth_is_measured_by_a_copy():
    assert 0 < copy_gbps("cpu", mib=8, repeats=2) < 1e5


def test_the_matmul_rate_is_measured_by_a_gemm():
    assert 0 < matmul_tflops("cpu", torch.float32, size=64, repeats=2) < 1e3


def test_validate_rows_get_the_limit_and_the_report_names_overhead_bound_runs():
    from analysis.validate.prefill import add_limits, limit_lines, screen_warning

    pipe = SimpleNamespace(language_model=_lm(4, 8))
    rows = pd.DataFrame(
        [{"method": "none", "budget": 576, "llm_input_tokens": 706, "seq_len": 706, "prune_layer": 0,
                          "paper_prefill_ms": 1000.0},
                         {"method": "fastv", "budget": 64, "llm_input_tokens": 706, "seq_len": 194,
                          "prune_layer": 2, "paper_prefill_ms": 1e-6}])
    # no rate: the table as it was
    assert add_limits(rows, pipe, None) is rows and limit_lines(rows, None) == []
    got = add_limits(rows, pipe, 1e-3, gbps=1e-3)
    # 2 x all layers' parameters x tokens
    assert got["arithmetic_limit_ms"][0] == pytest.approx(2 * 288 * 706 / 1e9 * 1e3)
    assert got["arithmetic_limit_ms"][1] == pytest.approx(2 * 72 * (2 * 706 + 2 * 194) / 1e9 * 1e3)
    # the roofline: the weight read (1,152 bytes at 1e-3 GB/s: 1.152 ms) is the floor of both rows here
    mean = (2 * 706 + 2 * 194) / 4
    assert got["roofline_ms"][1] == pytest.approx(1.152 + 2 * mean ** 2 * 8 * 4 / 1e9 * 1e3)
    assert got["roofline_speedup"][0] == 1.0 and got["roofline_speedup"][1] > 1.0
    assert got["over_roofline"][0] == pytest.approx(1000.0 / got["roofline_ms"][0])
    lines = limit_lines(got, 1e-3)
    assert "## Arithmetic limit and roofline" in lines
    assert any(x.startswith("- none@576") and "overhead-bound" in x for x in lines)
    assert not any(x.startswith("- fastv@64") and "overhead-bound" in x for x in lines)
    note = screen_warning(got)
    assert note.startswith("overhead-bound: 1 of 2 prefills") and "their roofline" in note


def test_efficiency_rows_and_the_prefill_figure_carry_the_note():
    import matplotlib.pyplot as plt

    from analysis.efficiency.bound import annotate_figure, limit_columns
    from litelvlm.cost.tokens import TokenPlan

    pipe = SimpleNamespace(language_model=_lm(4, 8))
    fastv = TokenPlan(130, ((0, 576), (2, 64)))
    cols = limit_columns(pipe, fastv, 1.0, 1e-3)
    assert cols["arithmetic_limit_ms"] == pytest.approx(2 * 72 * (2 * 706 + 2 * 194) / 1e9 * 1e3)
    assert cols["over_limit"] == pytest.approx(1.0 / cols["arithmetic_limit_ms"])
    assert limit_columns(pipe, fastv, 1.0, None) == {}
    fig = plt.figure()
    annotate_figure(fig, pd.DataFrame({"over_limit": [1.5, 8.25]}))
    assert [t.get_text() for t in fig.texts][0].startswith("overhead-bound: 1 of 2 prefills at 8.2-8.2x")
    quiet = plt.figure()
    annotate_figure(quiet, pd.DataFrame({"over_limit": [1.5]}))
    assert not quiet.texts
    plt.close("all")


@pytest.mark.odd_case("bad option", "--matmul-tflops not a positive rate; --compile with --prefill captured; "
                      "--capture graph off CUDA; --prefill captured with --warmup 0", "validate, efficiency",
                      "one line naming the option (exit 2), before torch loads, nothing written")
def test_bad_prefill_options_are_refused_before_torch(tmp_path):
    from tests.analysis.test_efficiency import parse_refusals

    out = tmp_path / "out"
    for name in ("refs(unc).p", "instances.json"):   # a REFER layout, so that the option is what is refused
        (tmp_path / name).write_bytes(b"")
    val = ["validate", "--refer-dir", str(tmp_path), "--out", str(out)]
    eff = ["efficiency", "--arch", "tiny", "--out", str(out)]
    got = parse_refusals([[*val, "--matmul-tflops", "fast"], [*val, "--matmul-tflops", "-1"],
                          [*val, "--compile", "--prefill", "captured"],
                          [*val, "--prefill", "captured", "--capture", "graph"],
                          [*eff, "--prefill", "captured", "--warmup", "0"], [*eff, "--matmul-tflops", "0"]])
    names = ["--matmul-tflops", "--matmul-tflops", "--compile", "--capture graph", "--warmup",
             "--matmul-tflops"]
    for g, name in zip(got, names, strict=True):
        assert g["rc"] == 2 and not g["torch"] and name in g["err"], g
    assert not out.exists()
