"""``prompt_inputs``: an expression's prompt for an image whose frames the processor already made gives what
``prepare_inputs`` gives (the processor run on the frames and the text): ids, types, grid,
``second_per_grid_ts``, the resized size and the answer, over odd and extreme image sizes, both answers, every
teacher-forced response and the seeded draw; and ``with_sentences`` no longer runs the video processor."""

from __future__ import annotations

import pytest
import torch

from litelvlm.unipixel.protocol import SEG_RESPONSES, prepare_inputs, prompt_inputs
from tests.fixtures.images import noise_image

SIZES = [(97, 131), (1, 1), (333, 17), (480, 640)]


def test_the_prompt_of_a_made_grid_is_the_processors(tiny_unipixel_pipe):
    processor = tiny_unipixel_pipe.processor
    answers = [("generate", 0, 0)] + [("teacher-forced", r, 0) for r in range(len(SEG_RESPONSES))] + [
        ("teacher-forced", None, k) for k in (0, "s17")]
    for size in SIZES:
        image = noise_image(*size)
        for answer, response, key in answers:
            want = prepare_inputs(processor, image, "the dog on the left", answer, response, seed=3, key=key)
            got = prompt_inputs(processor, want.inputs["video_grid_thw"], (image.height, image.width),
                                "the dog on the left", answer, response, seed=3, key=key)
            for name in ("input_ids", "mm_token_type_ids", "video_grid_thw", "second_per_grid_ts"):
                assert torch.equal(got.inputs[name], want.inputs[name]), (name, size, answer, response)
                assert got.inputs[name].dtype == want.inputs[name].dtype
            assert (got.question, got.text, got.answer, got.response, got.frame_size, got.resized) == (
                want.question, want.text, want.answer, want.response, want.frame_size, want.resized)


def test_with_sentences_runs_no_video_processor(tiny_unipixel_pipe, monkeypatch):
    pipe = tiny_unipixel_pipe
    prepared = pipe.prepare_image(noise_image(97, 131))
    calls = []
    real = type(pipe.processor.video_processor).__call__
    monkeypatch.setattr(type(pipe.processor.video_processor), "__call__",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    got = pipe.with_sentences(prepared, ["the dog on the left"], answer="teacher-forced")
    want = prepare_inputs(pipe.processor, prepared.image, "the dog on the left", "teacher-forced",
                          seed=prepared.seed)
    assert len(calls) == 1  # prepare_inputs' own call only
    assert torch.equal(got.input_ids, want.inputs["input_ids"][0])
    assert torch.equal(got.mm_token_type_ids, want.inputs["mm_token_type_ids"][0])


def test_an_unknown_answer_is_refused():
    from litelvlm.errors import LiteLVLMError

    with pytest.raises(LiteLVLMError, match="not one of"):
        prompt_inputs(None, torch.tensor([[1, 4, 4]]), (4, 4), "x", answer="guess")
