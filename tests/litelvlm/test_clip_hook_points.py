"""Every hook-point name resolves to the trace quantity it names (the explicit intermediate-features API)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.clip import HOOK_POINTS, hook_point


@pytest.fixture(scope="module")
def traces(tiny_hf_clip):
    from PIL import Image

    vision = tiny_hf_clip.trace_image(tiny_hf_clip.preprocess([Image.new("RGB", (40, 30), (200, 30, 30))]))
    text = tiny_hf_clip.encode_text(["a red square", "the dog"])
    return vision, text


def test_every_name_resolves_to_its_trace_method(traces):
    vision, text = traces
    expected = {
        "vision.hidden_states.-2": vision.hidden_states[-2],
        "vision.blocks.1.attn.qkv": vision.qkv(1),
        "vision.blocks.-1.attn.cls_row": vision.cls_attention(-1),
        "vision.projected.-2": vision.projected(-2),
        "text.hidden_states.0": text.hidden_states[0],
        "text.blocks.0.attn.qkv": text.qkv(0),
        "text.blocks.1.attn.pattern": text.attention(1),
        "text.blocks.-1.attn.eos_row": text.eos_attention(-1),
        "text.text_embeds": text.text_embeds,
    }
    assert len(expected) == len(HOOK_POINTS)  # one example per hook point
    for name, want in expected.items():
        got = hook_point(name, vision=vision, text=text)
        for g, w in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            torch.testing.assert_close(g, w)


def test_bad_names_and_missing_traces(traces):
    vision, _ = traces
    with pytest.raises(KeyError, match="unknown hook point"):
        hook_point("vision.nothing", vision=vision)
    with pytest.raises(ValueError, match="needs a text trace"):
        hook_point("text.text_embeds", vision=vision)
