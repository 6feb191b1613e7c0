"""``--quantize``: which modules are quantized (types asserted), finite results, masks against the unquantized
model, storage bytes, option errors, and the memory claims' judging (``analysis.validate.memory``)."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from litelvlm.errors import LiteLVLMError
from litelvlm.machine.memory import storage_bytes
from litelvlm.models.quantize import QUANTIZED_PREFIX, check_quantize, quantize_llm_layers, quantized_linears

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes not installed (pip install "
                          "'litelvlm[quantize]')")

SENTENCES = ["the dog on the left", "a red car"]


@pytest.fixture(scope="module")
def pipe(tiny_glamm_bf16):
    return tiny_glamm_bf16


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(0)
    return Image.fromarray(torch.randint(0, 256, (37, 53, 3), generator=g, dtype=torch.uint8).numpy())


def _quantized(pipe, mode: str, backend: str = "bitsandbytes"):
    q = copy.copy(pipe)
    q.model = copy.deepcopy(pipe.model)
    q.quantization = quantize_llm_layers(q.model, mode, backend, "cpu")
    return q


@pytest.fixture(scope="module")
def quantized(pipe):
    """:func:`_quantized` copies of ``pipe``, each (mode, backend) made once per module (the tests only read
    them)."""
    made: dict = {}

    def get(mode: str, backend: str = "bitsandbytes"):
        if (mode, backend) not in made:
            made[mode, backend] = _quantized(pipe, mode, backend)
        return made[mode, backend]

    return get


@pytest.fixture(scope="module")
def prepared(pipe, image):
    """The image with :data:`SENTENCES` prepared, and the unquantized model's ``none`` output on it."""
    prep = pipe.prepare(image, SENTENCES)
    with torch.no_grad():
        return prep, pipe.ground(prep, "none")


def _expected_type(mode: str, backend: str) -> type:
    if backend == "torchao":
        return nn.Linear
    return bnb.nn.Linear8bitLt if mode == "int8" else bnb.nn.Linear4bit


@pytest.mark.parametrize("mode,backend",
                         [("int8", "bitsandbytes"), ("nf4", "bitsandbytes"), ("int8", "torchao")])
def test_only_decoder_linears_are_quantized(pipe, quantized, mode, backend):
    if backend == "torchao":
        pytest.importorskip("torchao", reason="torchao not installed (pip install 'litelvlm[quantize]')")
    before = {n for n, _ in quantized_linears(pipe.model)}
    assert len(before) == pipe.model.arch.llm_layers * 7  # q, k, v, o, gate, up, down per layer
    q = quantized(mode, backend)
    assert q.quantization.quantized == len(before) and q.quantization.kept == ()
    for name, m in q.model.named_modules():
        if name in before:
            assert type(m) is _expected_type(mode, backend), name
            w = m.weight
            if backend == "torchao":
                assert type(w).__name__ == "Int8Tensor", name
            else:
                assert w.dtype == (torch.int8 if mode == "int8" else torch.uint8), name
        elif isinstance(m, nn.Linear):  # the towers, SAM, projector, text_hidden_fcs, lm_head
            assert not name.startswith(QUANTIZED_PREFIX), name
            assert type(m) is nn.Linear and m.weight.dtype == torch.bfloat16, name
    for part in ("vision_tower", "projector"):
        assert all(type(m) is nn.Linear for m in getattr(q.model, part).modules() if isinstance(m, nn.Linear))
    assert type(q.model.llava.lm_head) is nn.Linear and type(q.model.text_hidden_fcs[0][0]) is nn.Linear
    assert all(type(m) is nn.Linear for m in q.clip.modules().text_model.modules()
               if isinstance(m, nn.Linear))


@pytest.mark.parametrize("mode,min_iou", [("int8", 0.9), ("nf4", 0.9)])
def test_quantized_masks_finite_and_close_to_unquantized(quantized, prepared, mode, min_iou):
    prep, ref = prepared
    q = quantized(mode)
    with torch.no_grad():
        outs = {method: q.ground(prep, method, budget)
                for method, budget in (("none", None), ("litelvlm", 8))}
    for out in outs.values():
        assert torch.isfinite(out.mask_logits).all() and torch.isfinite(out.seg_hidden.float()).all()
        assert out.masks.shape == ref.masks.shape and out.masks.dtype == torch.bool
    out = outs["none"]
    inter = (out.masks & ref.masks).sum().item()
    union = (out.masks | ref.masks).sum().item()
    iou = inter / union if union else 1.0
    assert iou >= min_iou, f"{mode}: mask IoU with the unquantized model {iou:.3f}"


def test_storage_bytes_counts_quantized_weights(pipe, quantized):
    lin = nn.Linear(64, 32)
    assert storage_bytes(lin) == (64 * 32 + 32) * 4
    shared = nn.Sequential(lin, lin)  # one storage counted once
    assert storage_bytes(shared) == storage_bytes(lin)
    with torch.device("meta"):
        assert storage_bytes(nn.Linear(64, 32)) == (64 * 32 + 32) * 4
    full = storage_bytes(pipe.model)
    linear_bytes = sum(m.weight.numel() * 2 for _, m in quantized_linears(pipe.model))
    int8 = storage_bytes(quantized("int8").model)
    nf4 = storage_bytes(quantized("nf4").model)
    # int8: 1 byte per weight plus one float32 scale per output row; nf4: half a byte plus block scales
    assert full - linear_bytes / 2 * 1.2 < int8 < full - linear_bytes / 2 * 0.8
    assert nf4 < int8 and full - linear_bytes * 0.75 <= nf4


def test_option_errors():
    with pytest.raises(LiteLVLMError, match="--quantize 'int4'"):
        check_quantize("int4")
    with pytest.raises(LiteLVLMError, match="torchao serves --quantize int8 only"):
        check_quantize("nf4", "torchao")
    with pytest.raises(LiteLVLMError, match="--quantize-backend"):
        check_quantize("int8", "quanto")


def test_validate_quantized_tiny(coco128, tmp_path):
    from litelvlm.cli import main

    out = tmp_path / "v"
    argv = ["validate", "--refer-dir", str(coco128), "--out", str(out), "--methods", "litelvlm",
            "--budgets", "576", "32", "--no-figures", "--quantize", "int8"]   # the figures are not read here
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["quantize"] == "int8" and cfg["quantize_backend"] == "bitsandbytes"
    mem = pd.read_csv(out / "memory.csv")
    assert set(mem["quantize"]) == {"int8"} and (mem["peak_mb"] > mem["weights_mb"]).all()
    report = (out / "report.md").read_text()
    assert "quantized to int8 with bitsandbytes" in report
    # the same folder refuses another precision, naming the option
    assert main([*argv[:-2], "--quantize", "nf4"]) == 2


def test_folders_written_before_quantize_resume(tmp_path):
    from litelvlm.runs.resume import check_config

    (tmp_path / "config.json").write_text(json.dumps({"model": "tiny-random:0"}))
    check_config(tmp_path, {"model": "tiny-random:0", "quantize": "none", "quantize_backend": "bitsandbytes"})
    with pytest.raises(LiteLVLMError, match="--quantize"):
        check_config(tmp_path,
                     {"model": "tiny-random:0", "quantize": "int8", "quantize_backend": "bitsandbytes"})


def test_memory_claims_judging():
    from analysis.validate.memory import memory_claims

    rows = []
    for q, w in (("none", 15000.0), ("int8", 9000.0)):
        for method, budget, act in (("none", 576, 200.0), ("litelvlm", 192, 60.0), ("litelvlm", 32, 50.0)):
            rows.append(
                {"quantize": q, "method": method, "budget": budget, "weights_mb": w, "peak_mb": w + act})
    claims = memory_claims(pd.DataFrame(rows)).set_index(["claim", "quantize"])["verdict"]
    assert claims[("pruning alone, LiteLVLM at 192", "none")] == "MET"  # 140 of 15200 MB: 0.9%
    # the paper's claim is unquantized
    assert claims[("pruning alone, LiteLVLM at 192", "int8")] == "no claim"
    assert claims[("8-bit weights, all tokens", "int8")] == "MET"  # 9200 against 15200: 39.5% lower
    missing = memory_claims(pd.DataFrame(rows[:3]))
    assert (missing.set_index("claim").loc["8-bit weights, all tokens", "verdict"]) == "not measured"


def test_quantize_clip_encoder_layers_only():
    from litelvlm.clip import load_clip
    from litelvlm.models.quantize import CLIP_PREFIXES, quantize_clip

    clip = load_clip("tiny336-random:0", "hf", dtype=torch.bfloat16)
    model = clip.modules()
    names = {n for n, _ in quantized_linears(model, CLIP_PREFIXES)}
    report = quantize_clip(model, "int8")
    assert report.quantized == len(names) > 0
    for name, m in model.named_modules():
        if name in names:
            assert type(m) is bnb.nn.Linear8bitLt, name
        elif isinstance(m, nn.Linear):  # the projections
            assert type(m) is nn.Linear and m.weight.dtype == torch.bfloat16, name
    assert type(model.visual_projection) is nn.Linear and type(model.text_projection) is nn.Linear


def test_retention_quantized_clip_overlap(tmp_path, capsys):
    from litelvlm.cli import main

    base = ["retention", "--dtype", "bfloat16", "--budgets", "64", "16", "--methods", "litelvlm,random"]
    assert main([*base, "--out", str(tmp_path / "bf16")]) == 0
    assert main([*base, "--out", str(tmp_path / "int8"), "--quantize", "int8",
                 "--compare-to", str(tmp_path / "bf16")]) == 0
    assert "kept tokens shared with" in capsys.readouterr().out
    ov = pd.read_csv(tmp_path / "int8" / "overlap.csv")
    assert set(ov["method"]) == {"litelvlm", "random"} and set(ov["budget"]) == {64, 16}
    assert ov["overlap"].between(0, 1).all() and (ov.loc[ov["method"] == "random", "overlap"] == 1).all()
    cfg = json.loads((tmp_path / "int8" / "config.json").read_text())
    assert cfg["quantize"] == "int8" and cfg["dtype"] == "bfloat16"
    assert main([*base, "--out", str(tmp_path / "x"), "--compare-to", str(tmp_path / "nope")]) == 2
    assert "holds no retention.parquet" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["int8", "nf4"])
def test_quantized_tiny_validate_on_cuda(mode, coco128, tmp_path):
    from litelvlm.cli import main

    out = tmp_path / mode
    assert main(
        ["validate", "--refer-dir", str(coco128), "--out", str(out), "--device", "cuda", "--quantize", mode,
                 "--methods", "litelvlm,fastv", "--budgets", "576", "64"]) == 0
    assert pd.read_csv(out / "checks.csv")["passed"].all()
    mem = pd.read_csv(out / "memory.csv")
    assert (mem["quantize"] == mode).all() and (mem["peak_mb"] > mem["weights_mb"]).all()


def test_settings_are_those_of_lisas_bitsandbytes_config():
    """LISA's chat.py (dvlab-research/LISA, commit 3cb2d43, chat.py lines 88-116), transcribed:
    ``BitsAndBytesConfig(llm_int8_skip_modules=["visual_model"], load_in_8bit=True)`` and
    ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16,
    bnb_4bit_use_double_quant=True, bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["visual_model"])``; our
    layers carry the same settings (the compute dtype is --dtype here, a listed deviation)."""
    from transformers import BitsAndBytesConfig

    from litelvlm.models.quantize import INT8_THRESHOLD, NF4_BLOCK

    c8 = BitsAndBytesConfig(llm_int8_skip_modules=["visual_model"], load_in_8bit=True)
    c4 = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16,
                            bnb_4bit_use_double_quant=True,
                            bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["visual_model"])
    # one linear layer at GLaMM's path llava.model.language_model.layers.0
    stack = nn.ModuleDict({"layers": nn.ModuleList([nn.Linear(128, 64)])})
    model = nn.ModuleDict({"llava": nn.ModuleDict({"model": nn.ModuleDict({"language_model": stack})})})
    q8 = copy.deepcopy(model)
    quantize_llm_layers(q8, "int8")
    l8 = q8["llava"]["model"]["language_model"]["layers"][0]
    assert l8.state.threshold == c8.llm_int8_threshold == INT8_THRESHOLD
    assert l8.state.has_fp16_weights is c8.llm_int8_has_fp16_weight is False
    q4 = copy.deepcopy(model)
    quantize_llm_layers(q4, "nf4")
    w4 = q4["llava"]["model"]["language_model"]["layers"][0].weight
    assert w4.quant_type == c4.bnb_4bit_quant_type == "nf4"
    assert w4.compress_statistics is c4.bnb_4bit_use_double_quant is True
    assert w4.blocksize == NF4_BLOCK and w4.quant_state.nested  # double quantization: nested absmax


def test_efficiency_times_the_quantized_model(tmp_path, capsys):
    """``efficiency --quantize``: the timed pipeline's decoder layers hold quantized weights (its CLIP and SAM
    do not), the run records the precision, and a FLOPs-only or meta-device quantization is refused."""
    import json

    import torch

    from analysis.efficiency.arch import get_arch
    from litelvlm.cli import main
    from litelvlm.errors import LiteLVLMError
    from litelvlm.glamm.cost_parts import build_pipeline

    arch = get_arch("tiny")
    pipe = build_pipeline(arch, "cpu", torch.float32, "sdpa", quantize="int8")
    layer = pipe.model.llava.model.language_model.layers[0].mlp.down_proj
    assert isinstance(layer, bnb.nn.Linear8bitLt) and pipe.quantization.mode == "int8"
    assert not any(isinstance(m, bnb.nn.Linear8bitLt) for m in pipe.clip.model.modules())
    with pytest.raises(LiteLVLMError, match="meta device"):
        build_pipeline(arch, "meta", torch.float32, "sdpa", quantize="int8")
    out = tmp_path / "q"
    args = ["efficiency", "--arch", "tiny", "--methods", "none,litelvlm", "--budgets", "32", "--warmup", "0",
            "--repeats", "1", "--attn", "sdpa", "--no-figures"]
    assert main([*args, "--quantize", "int8", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert ((cfg["quantize"], cfg["quantize_backend"]) == ("int8", "bitsandbytes")
            and "--quantize int8" in cfg["command"])
    assert main([*args, "--quantize", "int8", "--flops-only", "--out", str(tmp_path / "bad")]) == 2
    assert "not the FLOPs" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(
        [*args, "--quantize", "nf4", "--quantize-backend", "torchao", "--out", str(tmp_path / "bad")]) == 2
    assert "torchao serves --quantize int8 only" in capsys.readouterr().err and not (
        tmp_path / "bad").exists()
