"""The official attention kernel is the family's (its card's ``official_attn``): eager for LiteLVLM's GLaMM
stack and VideoGLaMM's Phi-3, SDPA for Sa2VA and UniPixel (whose official code loads flash_attention_2, which
SDPA computes on every device); ``--attn`` overrides it, and the LLM's effective kernel is recorded in a run's
config.json without being compared on resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from analysis.common.grounding.model_setup import study_numerics
from analysis.common.runs.study import llm_attn_record
from litelvlm.registry.families import card_of
from litelvlm.runs.resume import NOT_COMPARED


@pytest.mark.parametrize("model, official", [("tiny-random:0", "eager"),
                                             ("videoglamm-tiny-random:0", "eager"),
                                             ("sa2va-tiny-random:0", "sdpa"),
                                             ("unipixel-tiny-random:0", "sdpa")])
def test_the_official_kernel_is_the_family_s(model, official):
    args = SimpleNamespace(model=model, attn=None, clip_preprocess=None, score_dtype=None, clip_softmax=None)
    assert card_of(model).official_attn == official
    assert study_numerics(args, "official").attn == official
    assert study_numerics(SimpleNamespace(**{**vars(args), "attn": "eager"}), "official").attn == "eager"
    assert study_numerics(args, "per-expression").attn == "sdpa"   # the project's numerics
    assert study_numerics(args, "official").clip_softmax == "official"
    assert study_numerics(args, "per-expression").clip_softmax == "float32"
    assert study_numerics(SimpleNamespace(**{**vars(args), "clip_softmax": "float32"}),
                          "official").clip_softmax == "float32"


def test_a_qwen_family_loaded_without_numerics_runs_its_official_sdpa():
    from litelvlm.registry.families import load_pipeline

    pipe = load_pipeline("sa2va-tiny-random:0")
    assert pipe.numerics.attn == "sdpa"
    assert llm_attn_record(pipe.language_model) == {"llm_attn_implementation": "sdpa"}
    assert "llm_attn_implementation" in NOT_COMPARED and llm_attn_record(object()) == {}
