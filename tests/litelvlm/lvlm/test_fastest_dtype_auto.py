"""``--layer-dtype auto`` / ``efficiency --dtype auto``: the faster of bfloat16 and float32 on this machine,
chosen by a short matmul benchmark (stubbed here: no timed test), recorded in ``config.json``; result studies
keep ``model``."""

from __future__ import annotations

import json

import pytest
import torch

from litelvlm.lvlm import fastest_dtype as fd


@pytest.fixture
def stub_bench(monkeypatch):
    """Stub the micro-benchmark: ``stub_bench(float32=s, bfloat16=s)`` sets each dtype's seconds; returns the
    calls."""
    calls: list[torch.dtype] = []

    def set_times(**seconds: float) -> list[torch.dtype]:
        def fake(dtype, shape, repeats=fd.REPEATS):
            calls.append(dtype)
            return seconds[str(dtype)[6:]]

        monkeypatch.setattr(fd, "matmul_seconds", fake)
        fd.clear_cache()
        return calls

    yield set_times
    fd.clear_cache()


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [(1.0, 2.0, "float32"), (2.0, 1.0, "bfloat16"),
                                                       # a tie keeps the official bf16
                                                       (1.0, 1.02, "bfloat16")])
def test_the_faster_dtype_is_chosen(stub_bench, fp32, bf16, expected):
    calls = stub_bench(float32=fp32, bfloat16=bf16)
    choice = fd.fastest_dtype("cpu", 706, 4096, 11008)
    assert choice.dtype == expected and choice.device == "cpu"
    assert choice.shape == (256, 4096, 2048) and choice.threads == torch.get_num_threads()
    assert choice.gflops["float32"] == pytest.approx(2 * 256 * 4096 * 2048 / fp32 / 1e9, rel=1e-2)
    n = len(calls)
    assert fd.fastest_dtype("cpu", 706, 4096, 11008) is choice and len(calls) == n  # cached per process


def test_cuda_is_bfloat16_without_a_benchmark(stub_bench):
    calls = stub_bench(float32=1.0, bfloat16=9.0)
    choice = fd.fastest_dtype("cuda")
    assert choice.dtype == "bfloat16" and "no benchmark" in choice.reason and not calls


def test_real_benchmark_is_short_and_names_a_dtype():
    fd.clear_cache()
    choice = fd.fastest_dtype("cpu", 40, 64, 128)  # a tiny layer: the real products, not stubbed
    assert choice.dtype in ("bfloat16", "float32") and set(choice.gflops) == {"bfloat16", "float32"}
    assert all(v > 0 for v in choice.gflops.values())
    json.dumps(choice.to_dict())
    fd.clear_cache()


def test_resolve_keeps_float32_and_quantized_weights(stub_bench):
    from litelvlm.lvlm.upcast import resolve_layer_dtype

    stub_bench(float32=1.0, bfloat16=3.0)
    assert resolve_layer_dtype("model", torch.bfloat16, "cpu", 706, 64, 128) == ("model", None)
    assert resolve_layer_dtype("auto", torch.float32, "cpu", 706, 64, 128)[0] == "model"
    assert resolve_layer_dtype("auto", torch.bfloat16, "cpu", 706, 64, 128, quantize="int8")[0] == "model"
    resolved, record = resolve_layer_dtype("auto", torch.bfloat16, "cpu", 706, 64, 128)
    assert resolved == "float32" and record["asked"] == "auto" and record["dtype"] == "float32"


def test_glamm_pipeline_upcasts_when_float32_is_faster(stub_bench):
    from litelvlm.glamm import GlammPipeline

    stub_bench(float32=1.0, bfloat16=3.0)
    p = GlammPipeline.from_model_string("tiny-random:0", dtype=torch.bfloat16, layer_dtype="auto")
    assert p.layer_hooks and p.describe()["layer_dtype"] == "float32"
    assert p.describe()["layer_dtype_auto"]["gflops"]["bfloat16"] > 0


def test_validate_records_the_choice_in_config(coco128, tmp_path, stub_bench):
    from litelvlm.cli import main

    stub_bench(float32=1.0, bfloat16=3.0)
    out = tmp_path / "v"
    assert main(
        ["validate", "--refer-dir", str(coco128), "--out", str(out), "--threads", "1", "--dtype", "bfloat16",
                 "--methods", "litelvlm", "--budgets", "64", "--no-figures"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["layer_dtype"] == "float32" and cfg["layer_dtype_auto"]["asked"] == "auto"
    assert cfg["layer_dtype_auto"]["gflops"]["float32"] > cfg["layer_dtype_auto"]["gflops"]["bfloat16"]


def test_efficiency_cpu_timing_defaults_to_auto_and_records_it(tmp_path, stub_bench):
    from litelvlm.cli import main

    stub_bench(float32=3.0, bfloat16=1.0)
    assert main(["efficiency", "--arch", "tiny", "--methods", "none", "--budgets", "576", "--warmup", "0",
                 "--repeats", "1", "--threads", "1", "--attn", "sdpa", "--no-figures", "--out",
                 str(tmp_path)]) == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["dtype"] == "bfloat16" and cfg["dtype_auto"]["dtype"] == "bfloat16"
    assert cfg["dtype_auto"]["shape"] == [256, 64, 128]


def test_result_studies_keep_the_official_arithmetic():
    from analysis.grounding.options import GroundingArgs
    from analysis.importance.options import ImportanceArgs
    from analysis.positions.options import PositionsArgs
    from analysis.validate.options import ValidateArgs

    for cls in (GroundingArgs, ImportanceArgs, PositionsArgs):
        assert cls.__dataclass_fields__["layer_dtype"].default == "model", cls
    assert ValidateArgs.__dataclass_fields__["layer_dtype"].default == "auto"  # a timing study
