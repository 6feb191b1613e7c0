"""Sa2VA-InternVL3's LLM against transformers 4.57.0's own ``Qwen2ForCausalLM`` run under Sa2VA's pin in a
second environment (``tests/pinned_env.py``; bytedance/Sa2VA @9832e1a ``pyproject.toml`` extra ``latest``),
loaded from the written random folder as the official ``Sa2VAChatModel`` builds it (``language_model``,
``modeling_sa2va_chat.py`` L132-133): on the same ``inputs_embeds``, the state ``predict_forward`` reads
(the last ``hidden_states`` entry) is our pipeline's final state, under eager and SDPA attention; 4.57 puts
the normed state last for Qwen2 (its ``@check_model_inputs`` sits on the inner ``Qwen2Model``), unlike
Qwen3-VL."""

from __future__ import annotations

import pytest
import torch

from litelvlm.registry.families import load_pipeline
from tests.litelvlm.sa2va.official_pin import LLM_CASES as CASES
from tests.litelvlm.sa2va.official_pin import official_side


@pytest.fixture(scope="module")
def pinned():
    """(our final states, the official side's results) for :data:`CASES` (``official_pin.LLM_CASES``): the
    official side run once a process with the Qwen backbones' (``tests/litelvlm/sa2va/official_pin.py``)."""
    folder, cases, got = official_side().internvl
    lm, ours = load_pipeline(str(folder)).language_model, []
    for (attn, _), case in zip(CASES, cases, strict=True):
        assert case["x"].shape[-1] == lm.config.hidden_size
        saved = lm.config._attn_implementation
        lm.config._attn_implementation = attn
        try:
            with torch.no_grad():
                ours.append(lm(inputs_embeds=case["x"]).last_hidden_state)
        finally:
            lm.config._attn_implementation = saved
    return ours, got


def test_the_official_side_ran_under_the_pin(pinned):
    got = pinned[1]
    assert got["versions"]["transformers"] == "4.57.0" and "pinned" in got["versions"]["transformers_path"]
    assert [c["attn"] for c in got["cases"]] == [a for a, _ in CASES]


def test_the_state_predict_forward_reads_is_ours(pinned):
    ours, got = pinned
    for (attn, _), mine, official in zip(CASES, ours, got["cases"], strict=True):
        torch.testing.assert_close(mine, official["hidden_last"], atol=1e-6, rtol=1e-6, msg=attn)
        assert (official["hidden_last"] - official["before_norm"]).abs().max() > 0.1   # the normed one
