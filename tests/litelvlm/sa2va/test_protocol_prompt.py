"""``prompt_inputs``: a sentence's prompt for an image the processor already made gives the ids and types
``prepare_inputs`` gives (the processor run on the image and the text), on both Qwen backbones, odd and
extreme image sizes, several images (a video's LLM frames), every teacher-forced answer and the generated
one, both resizes; and ``with_sentences`` no longer runs the image processor (a sentence costs its tokens)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.sa2va.protocol import (
    ANSWERS_LIST,
    image_question,
    prepare_inputs,
    prompt_inputs,
    video_question,
)
from tests.fixtures.images import noise_image

SIZES = [(97, 131), (1, 1), (333, 17), (480, 640)]


@pytest.mark.parametrize("resize", ["torchvision", "pil"])
def test_the_prompt_of_a_made_grid_is_the_processors(qwen_sa2va, resize):
    pipe = qwen_sa2va
    cases = [([noise_image(*s)], image_question("the dog on the left"), r)
             for s in SIZES for r in (0, len(ANSWERS_LIST) - 1, None)]
    cases += [([noise_image(61, 89, k) for k in range(3)], video_question("a cat"), r) for r in (1, None)]
    for images, question, response in cases:
        want = prepare_inputs(pipe.processor, images, question, pipe.min_pixels, pipe.max_pixels, response,
                              resize)
        got = prompt_inputs(pipe.processor, want.inputs["image_grid_thw"], question, response)
        for key in ("input_ids", "mm_token_type_ids"):
            assert torch.equal(got.inputs[key], want.inputs[key]), (key, len(images), response)
            assert got.inputs[key].dtype == want.inputs[key].dtype
        assert (got.text, got.response, got.images) == (want.text, want.response, [])


def test_with_sentences_runs_no_image_processor(qwen_sa2va, monkeypatch):
    pipe = qwen_sa2va
    prepared = pipe.prepare_image(noise_image(97, 131))
    calls = []
    real = type(pipe.processor.image_processor).__call__
    monkeypatch.setattr(type(pipe.processor.image_processor), "__call__",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    got = pipe.with_sentences(prepared, ["the dog on the left"])
    want = prepare_inputs(pipe.processor, [prepared.image], image_question("the dog on the left"),
                          pipe.min_pixels, pipe.max_pixels, 0, pipe.image_resize)
    assert len(calls) == 1  # prepare_inputs' own call only
    assert torch.equal(got.input_ids, want.inputs["input_ids"][0])
    assert torch.equal(got.mm_token_type_ids, want.inputs["mm_token_type_ids"][0])


def test_a_response_outside_the_list_is_refused(qwen_sa2va):
    pipe = qwen_sa2va
    from litelvlm.errors import LiteLVLMError

    with pytest.raises(LiteLVLMError, match="ANSWERS_LIST"):
        prompt_inputs(pipe.processor, torch.tensor([[1, 4, 4]]), "q", len(ANSWERS_LIST))
