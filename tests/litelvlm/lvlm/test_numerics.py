"""A pipeline's numerics (``litelvlm.lvlm.numerics``): per-protocol defaults, the attention kernels they
set in LLaMA, CLIP and SAM, and what eager against SDPA changes on random weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.clip.attention import NAME as CLIP_EAGER
from litelvlm.errors import LiteLVLMError
from litelvlm.lvlm.numerics import Numerics

SENTENCES = ["the dog on the left", "red car", "the biggest person near the table"]


def test_presets_and_overrides():
    assert Numerics.for_protocol("official") == Numerics("eager", "official", "model", "official") \
        == Numerics.official() == Numerics("eager", "official", "model")
    assert Numerics.for_protocol("per-expression") == Numerics("sdpa", "transformers", "float32", "float32")
    assert Numerics.for_protocol("official", attn="sdpa", score_dtype=None).attn == "sdpa"
    with pytest.raises(LiteLVLMError, match="attn must be one of"):
        Numerics(attn="flex")
    with pytest.raises(LiteLVLMError, match="clip_preprocess must be one of"):
        Numerics(clip_preprocess="torchvision")
    with pytest.raises(LiteLVLMError, match="clip_softmax must be one of"):
        Numerics(clip_softmax="bfloat16")


def _implementations(pipe) -> tuple[set[str], set[str]]:
    """The attention implementations of the configs the LLM and SAM run with, and of CLIP's towers (LLaVA's
    vision tower and the CLIP backend's towers)."""
    m = pipe.model
    others = [m.llava.config.text_config, m.sam.config.vision_config, m.sam.config.mask_decoder_config]
    clip = [m.llava.config.vision_config, pipe.clip.modules().config.vision_config,
            pipe.clip.modules().config.text_config]
    return {c._attn_implementation for c in others}, {c._attn_implementation for c in clip}


@pytest.fixture(scope="module")
def pipes():
    from litelvlm.glamm import GlammPipeline

    eager = GlammPipeline.from_model_string("tiny-random:0")
    sdpa = GlammPipeline.from_model_string("tiny-random:0", numerics=Numerics(attn="sdpa"))
    return eager, sdpa


def test_pipeline_sets_attention_everywhere(pipes):
    """Eager: CLIP's towers run 4.x's eager kernel (``litelvlm.clip.attention``), the others transformers'
    eager; SDPA everywhere under ``sdpa``."""
    eager, sdpa = pipes
    assert eager.numerics == Numerics.official() and _implementations(eager) == ({"eager"}, {CLIP_EAGER})
    assert sdpa.numerics.attn == "sdpa" and _implementations(sdpa) == ({"sdpa"}, {"sdpa"})
    assert eager.describe()["numerics"] == {"attn": "eager", "clip_preprocess": "official",
                                            "score_dtype": "model", "clip_softmax": "official"}


def test_clip_softmax_float32_runs_transformers_5s_eager_in_clip():
    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0", numerics=Numerics(clip_softmax="float32"))
    assert _implementations(pipe) == ({"eager"}, {"eager"})


@pytest.mark.parametrize("method,budget", [("none", None), ("litelvlm", 16), ("fastv", 16), ("dart", 20),
                                           ("sparsevlm", 64), ("vispruner", 32)])
def test_eager_and_sdpa_agree_in_float32(pipes, method, budget):
    """Same weights and preprocessing, float32: the two kernels keep the same tokens and give masks within
    float rounding."""
    eager, sdpa = pipes
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (150, 220, 3), dtype=np.uint8))
    outs = []
    for pipe in (eager, sdpa):
        prep = pipe.prepare(image, SENTENCES)
        with torch.no_grad():
            outs.append(pipe.ground(prep, method, budget))
    a, b = outs
    assert torch.equal(a.kept_indices, b.kept_indices)
    torch.testing.assert_close(a.low_res_logits, b.low_res_logits, atol=1e-4, rtol=1e-4)


def test_cli_records_the_protocols_numerics(coco128, tmp_path):
    from litelvlm.cli import main

    for protocol, attn in (("official", "eager"), ("per-expression", "sdpa")):
        out = tmp_path / protocol
        assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(out), "--image-ids", "34",
                     "--methods", "none", "--protocol", protocol]) == 0
        cfg = json.loads((out / "config.json").read_text())
        assert cfg["attn"] is None and cfg["numerics"]["attn"] == attn  # the protocol's default ran
    assert main(["eval-grounding", "--refer-dir", str(coco128), "--out", str(tmp_path / "bad"),
                 "--attn", "flash"]) == 2
    assert not (tmp_path / "bad").exists()
