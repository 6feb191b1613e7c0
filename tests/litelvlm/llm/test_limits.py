"""The limits every family's LLM run is held to before its forward (``litelvlm.llm.limits``): a prompt past
the LLM's positions, and eager attention that needs more memory than the device has, are refused with one
error naming the figures (through the commands: exit 2, one line); runs within the limits are unchanged."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.cli import main
from litelvlm.errors import LiteLVLMError
from litelvlm.llm.limits import check_positions, eager_forward_bytes
from litelvlm.machine import memory
from tests.fixtures.cli import one_error_line as _one_error_line

#: one phrase, repeated into expressions past each tiny model's positions (GLaMM 2048, UniPixel and VideoGLaMM
#: 4096)
PHRASE = "the red circle on the left"
LONG = " ".join([PHRASE] * 700)
FAMILIES = {"tiny-random:0": 2048, "unipixel-tiny-random:0": 4096, "videoglamm-tiny-random:0": 4096}


@pytest.fixture(scope="module")
def long_refer(toy_refer, tmp_path_factory) -> Path:
    """The toy REFER folder with every sentence made past the tiny GLaMM's 2048 positions."""
    dst = tmp_path_factory.mktemp("limits") / "long"
    shutil.copytree(toy_refer, dst)
    refs = pickle.loads((dst / "refs(unc).p").read_bytes())
    for ref in refs:
        for s in ref["sentences"]:
            s["sent"] = s["raw"] = LONG
    (dst / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    return dst


def _image_or_clip(model: str):
    rng = np.random.default_rng(0)
    if model.startswith("videoglamm"):
        return [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(3)]
    return Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


# ---------------------------------------------------------------- positions

@pytest.mark.odd_case("prompt length", "an expression past the LLM's positions (every family, every LLM "
                      "entry)", "library: ground, context, answer=generate",
                      "LiteLVLMError naming the model, the prompt's length and max_position_embeddings")
@pytest.mark.parametrize("model", list(FAMILIES))
def test_every_family_refuses_a_prompt_past_its_positions(model):
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline(model)
    limit = FAMILIES[model]
    assert pipe.language_model.config.max_position_embeddings == limit
    base = pipe.prepare_image(_image_or_clip(model))
    prep = pipe.with_sentences(base, [LONG])
    said = (rf"model {re.escape(model)}: the prompt is \d+ tokens \(\d+ text \+ \d+ visual\), more than the "
            rf"{limit} positions its LLM has \(\w+, max_position_embeddings {limit}\); refused before the "
            r"forward")
    for run in (lambda: pipe.ground(prep, "none"), lambda: pipe.context(prep),
                lambda: pipe.ground(prep, "fastv")):
        with pytest.raises(LiteLVLMError, match=said):
            run()
    if "generate" in pipe.abilities.answers:
        with pytest.raises(LiteLVLMError, match=said):
            pipe.ground(pipe.with_sentences(base, [LONG], answer="generate"), "none")
    short = pipe.with_sentences(base, [PHRASE])
    n = pipe.num_visual(short)
    assert pipe.layout(short, n).seq_len <= limit
    with torch.no_grad():
        assert pipe.ground(short, "none").masks.shape[0] == 1  # a prompt within the positions runs


@pytest.mark.odd_case("prompt length", "a pruned prompt whose kept tokens keep positions past the LLM's",
                      "library: ground(positions='keep')",
                      "refused naming the position reached; the same tokens renumbered run")
def test_kept_positions_past_the_limit_are_refused_and_renumbered_ones_run(tiny_glamm):
    """130 phrases: about 1700 text tokens, so all 576 visual tokens pass the 2048 positions but 32 kept ones
    fit; kept at their original positions they still reach past 2048."""
    image = _image_or_clip("tiny-random:0")
    prep = tiny_glamm.prepare(image, [" ".join([PHRASE] * 130)])
    text = tiny_glamm.layout(prep, 576).seq_len - 576
    assert text + 576 > 2048 >= text + 32
    with pytest.raises(LiteLVLMError, match=rf"the prompt of {text + 32} tokens \({text} text \+ 32 visual\) "
                                            rf"reaches position {text + 575}, more than the 2048 positions"):
        tiny_glamm.ground(prep, "litelvlm", 32, positions="keep")
    with torch.no_grad():
        out = tiny_glamm.ground(prep, "litelvlm", 32, positions="renumber")
    assert out.seq_len == text + 32


@pytest.mark.odd_case("prompt length", "VideoGLaMM --arrangement direct at 196 a frame: 4160 visual tokens "
                      "past Phi-3's 4096 positions", "library: ground(arrangement='direct')",
                      "LiteLVLMError naming the 4160 visual tokens and the 4096 positions")
def test_videoglamm_direct_arrangement_past_phi3_positions_is_refused():
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline("videoglamm-tiny-random:0", arrangement="direct")
    prep = pipe.prepare(_image_or_clip("videoglamm-tiny-random:0"), [PHRASE])
    with pytest.raises(LiteLVLMError, match=r"the prompt is \d+ tokens \(\d+ text \+ 4160 visual\), more "
                                            r"than the 4096 positions its LLM has \(Phi3Model"):
        pipe.ground(prep, "litelvlm", 196)
    with torch.no_grad():
        assert pipe.ground(prep, "litelvlm", 81).seq_len < 4096  # 16 x 81 + 1024 visual tokens fit


@pytest.mark.usefixtures("one_glamm_pipeline")
@pytest.mark.odd_case("prompt length", "an expression past the tiny GLaMM's 2048 positions", "eval-grounding",
                      "one line naming the model, the prompt's length and the 2048 positions, exit 2")
def test_eval_grounding_refuses_an_expression_past_the_positions(long_refer, tmp_path, capsys):
    rc = main(["eval-grounding", "--refer-dir", str(long_refer), "--out", str(tmp_path / "out"), "--model",
               "tiny-random:0", "--limit-images", "1", "--methods", "litelvlm", "--budgets", "32",
               "--threads", "1"])
    line = _one_error_line(rc, capsys.readouterr().err, "eval-grounding")
    assert re.search(r"model tiny-random:0: the prompt is \d+ tokens \(\d+ text \+ \d+ visual\), more than "
                     r"the 2048 "
                     r"positions its LLM has \(LlamaModel, max_position_embeddings 2048\)", line), line
    assert "give a shorter expression" in line


@pytest.mark.odd_case("prompt length", "--arrangement direct: 576 CLIP tokens a frame, past Phi-3's 4096 "
                      "positions",
                      "eval-video", "one line naming the model, the prompt's length and the 4096 positions, "
                      "exit 2")
def test_eval_video_refuses_the_direct_arrangement_past_the_positions(tmp_path, capsys):
    rc = main(["eval-video", "--out", str(tmp_path / "video"), "--anno-sets", "0", "--synthetic-videos", "1",
               "--synthetic-frames", "4", "--synthetic-seed", "11", "--methods", "litelvlm", "--budgets",
               "196", "--arrangement", "direct", "--threads", "1"])
    line = _one_error_line(rc, capsys.readouterr().err, "eval-video")
    assert re.search(r"model videoglamm-tiny-random:0: the prompt is \d+ tokens \(\d+ text \+ \d+ visual\), "
                     r"more than "
                     r"the 4096 positions its LLM has \(Phi3Model, max_position_embeddings 4096\)",
                     line), line
    assert not (tmp_path / "video" / "summary.csv").exists()


def test_positions_are_read_from_the_llm_config():
    """``check_positions`` reads ``max_position_embeddings``; a decoder without one is not limited."""
    from transformers import LlamaConfig, LlamaModel

    lm = LlamaModel(
        LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                vocab_size=32, max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                                eos_token_id=2))
    check_positions(lm, "m", 64)
    with pytest.raises(LiteLVLMError, match="the prompt is 65 tokens, more than the 64 positions"):
        check_positions(lm, "m", 65)
    with pytest.raises(LiteLVLMError, match=r"\(64 text \+ 1 visual\).*: give a shorter expression$"):
        check_positions(lm, "m", 65, num_visual=1)
    with pytest.raises(LiteLVLMError, match=r"\(60 text \+ 5 visual\).*or fewer visual tokens"):
        check_positions(lm, "m", 65, num_visual=5)
    check_positions(torch.nn.Linear(1, 1), "m", 10**6)


# ---------------------------------------------------------------- memory

def _decoder(kind: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaModel, Phi3Config, Phi3Model

    sizes = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=100, max_position_embeddings=4096,
                 attn_implementation="eager", pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if kind == "phi3":
        return Phi3Model(Phi3Config(sliding_window=2048, **sizes)).to(dtype).eval()
    return LlamaModel(LlamaConfig(**sizes)).to(dtype).eval()


@pytest.mark.parametrize("kind", ["llama", "phi3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_eager_estimate_tracks_the_measured_peak(kind, dtype):
    """The pre-flight figure is within a few percent of the peak an eager forward's tensors reach (counted by
    ``LiveTensorBytes``), never far below it."""
    lm = _decoder(kind, dtype)
    x = torch.randn(1, 1200, 64, dtype=dtype)
    peak, _ = memory.peak_activation_bytes(
        lambda: lm(inputs_embeds=x, attention_mask=torch.ones(1, 1200, dtype=torch.long), use_cache=False))
    estimate = eager_forward_bytes(lm, 1200)
    assert 0.95 * peak <= estimate <= 1.2 * peak, (estimate, peak)
    assert eager_forward_bytes(lm, 1200, grad=True) > 2 * estimate  # every layer's probabilities kept
    lm.config._attn_implementation = "sdpa"
    assert eager_forward_bytes(lm, 1200) is None


@pytest.mark.usefixtures("one_glamm_pipeline")
@pytest.mark.odd_case("memory", "eager attention needing more memory than the machine has (injected small "
                      "figure)",
                      "eval-grounding", "one line naming the eager attention, the GiB needed and available, "
                      "exit 2")
def test_eval_grounding_refuses_attention_past_the_available_memory(toy_refer, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 300_000)
    rc = main(["eval-grounding", "--refer-dir", str(toy_refer), "--out", str(tmp_path / "out"),
               "--model", "tiny-random:0", "--limit-images", "1", "--methods", "litelvlm", "--budgets", "32",
               "--threads", "1"])
    line = _one_error_line(rc, capsys.readouterr().err, "eval-grounding")
    assert re.search(r"model tiny-random:0: the LLM's eager attention \(LlamaAttention, 4 heads, float32\) "
                     r"over 1 "
                     r"sequence\(s\) of \d+ tokens needs [0-9.e-]+ GiB at once; cpu has 0.00028 GiB "
                     r"available. "
                     r"Refused before allocating: give a shorter expression", line), line


@pytest.mark.odd_case("memory", "the attention rows a method reads, past the available memory (injected)",
                      "library: attention_rows", "LiteLVLMError naming the rows and both figures")
def test_attention_rows_past_the_available_memory_are_refused(tiny_glamm, monkeypatch):
    prep = tiny_glamm.prepare(_image_or_clip("tiny-random:0"), [PHRASE])
    ctx = tiny_glamm.context(prep)
    ctx.hidden_before(1)  # the layers run within the memory the machine has
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1000)
    with pytest.raises(LiteLVLMError, match=r"the attention rows of \d+ queries over \d+ keys "
                                            r"\(LlamaAttention, 4 heads, in float32\) needs .* GiB at once; "
                                            r"cpu has 9.3e-07 GiB available"):
        ctx.attention_rows(1, "text")


def test_a_run_within_the_memory_is_unchanged(tiny_glamm, monkeypatch):
    """With exactly the memory the estimate asks for, the run passes and its masks are those of an unchecked
    run (no device figure); one byte less is refused."""
    prep = tiny_glamm.prepare(_image_or_clip("tiny-random:0"), [PHRASE])
    needed = eager_forward_bytes(tiny_glamm.language_model, tiny_glamm.layout(prep, 576).seq_len)
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": None)
    with torch.no_grad():
        free = tiny_glamm.ground(prep, "none")
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": needed)
    with torch.no_grad():
        fitted = tiny_glamm.ground(prep, "none")
    assert torch.equal(free.mask_logits, fitted.mask_logits)
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": needed - 1)
    with pytest.raises(LiteLVLMError, match="needs .* GiB at once"):
        tiny_glamm.ground(prep, "none")


def test_available_memory_is_read_per_device():
    room = memory.available_bytes("cpu")
    assert room is None or room > 0
    assert memory.available_bytes("meta") is None
    memory.check_fits(10, "x", "y", "cpu", available=10)
    with pytest.raises(LiteLVLMError, match=r"^x needs 1.00 GiB at once; cpu has 0.50 GiB available. Refused "
                                            r"before allocating: y$"):
        memory.check_fits(2 ** 30, "x", "y", "cpu", available=2 ** 29)
    assert memory.gib(0) == "0.00 GiB" and memory.gib(3 * 2 ** 29) == "1.50 GiB"
