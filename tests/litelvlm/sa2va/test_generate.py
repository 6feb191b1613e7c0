"""``answer="generate"`` on Sa2VA: the official greedy answer and the masks of its ``[SEG]`` tokens
(bytedance/Sa2VA @9832e1a ``modeling_sa2va_qwen.py`` ``predict_forward`` L218-274, ``sa2va_eval_refcoco.py``
L160-186, ``sa2va_eval_ref_vos.py`` L196-201), on the tiny random weights.

Transcribed here: ``model.generate(**mm_inputs, max_new_tokens, do_sample=False, output_hidden_states=True,
return_dict_in_generate=True)`` on the stock model and ``get_seg_hidden_states`` over the sequence less its
last token (the final state of each row whose input is a generated ``[SEG]``). Random weights never pick
``[SEG]``, so a forward hook on the LM head adds to its logit at chosen steps (the same hook on both
sides)."""

from __future__ import annotations

import pytest
import torch

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image

STEPS = 6


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline("sa2va-tiny-random:0")
    p.max_new_tokens = STEPS
    return p


class _ForceSeg:
    """A forward hook on the LM head: +1e4 on ``[SEG]``'s logit at the last row of the forwards in
    ``steps``."""

    def __init__(self, pipe, steps: set[int]):
        self.pipe, self.steps, self.calls, self.seg = pipe, steps, 0, pipe.seg_token_id

    def __call__(self, module, args, output):
        if self.calls in self.steps:
            output = output.clone()
            output[..., -1 if output.dim() == 3 else slice(None), self.seg] += 1e4
        self.calls += 1
        return output

    def __enter__(self):
        self.handle = self.pipe.qwen.lm_head.register_forward_hook(self)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def official_generate(pipe, prep):
    """(generated ids, the [SEG] rows' final states) as ``predict_forward`` makes them (L218-259)."""
    from litelvlm.sa2va.protocol import image_question, prepare_inputs, video_question

    if prep.video is None:
        images, q = [prep.image], image_question(prep.sentences[0])
    else:
        images, q = prep.llm_images, video_question(prep.sentences[0])
    data = prepare_inputs(pipe.processor, images, q, pipe.min_pixels, pipe.max_pixels, response=None).inputs
    with torch.no_grad():
        out = pipe.qwen.generate(**data, max_new_tokens=STEPS, do_sample=False, output_hidden_states=True,
                                 return_dict_in_generate=True)
    hidden = torch.cat([step[-1][0] for step in out.hidden_states])       # last_hidden_states (L262-264)
    ids = out.sequences[0][:-1]
    seg = hidden[-len(ids):][ids == pipe.seg_token_id]                      # get_seg_hidden_states (L283-289)
    return out.sequences[0, data["input_ids"].shape[1]:], seg


def test_the_prompt_ends_where_the_answer_starts(pipe):
    prep = pipe.with_sentences(pipe.prepare_image(noise_image(61, 97)), ["the cat"], answer="generate")
    assert int((prep.input_ids == pipe.seg_token_id).sum()) == 0 and prep.prompt_len is None
    with pytest.raises(LiteLVLMError, match="answer must be one of"):
        pipe.with_sentences(prep, ["the cat"], answer="greedy")


@pytest.mark.parametrize("size", [(61, 97), (300, 41)])
def test_generated_masks_are_predict_forwards(pipe, size):
    """Two [SEG]s generated (steps 1 and 3): the rows whose input is each (the step after), their union as
    RefCOCO's evaluation keeps it."""
    prep = pipe.with_sentences(pipe.prepare_image(noise_image(*size)), ["the dog on the left"],
                               answer="generate")
    with _ForceSeg(pipe, {1, 3}):
        want_ids, want_seg = official_generate(pipe, prep)
    with _ForceSeg(pipe, {1, 3}), torch.no_grad():
        out = pipe.ground(prep, "none")
    assert torch.equal(out.generated, want_ids.cpu()) and want_seg.shape[0] == 2
    torch.testing.assert_close(out.seg_hidden, want_seg, rtol=1e-5, atol=1e-5)
    assert out.seg_positions.tolist() == [out.seq_len + 1, out.seq_len + 3]
    with torch.no_grad():
        each = pipe.upscale_masks(prep, pipe.decode_masks(prep, pipe.seg_prompts(want_seg)))
    assert out.masks.shape == (1, *size)
    assert torch.equal(out.masks[0], (each > 0).any(0))


def test_a_seg_generated_last_has_no_state_and_none_gives_an_empty_mask(pipe):
    prep = pipe.with_sentences(pipe.prepare_image(noise_image(61, 97)), ["a cat"], answer="generate")
    with _ForceSeg(pipe, {STEPS - 1}), torch.no_grad():
        out = pipe.ground(prep, "divprune", 9)
    # generated last: predict_forward drops the last token's row
    if int(out.generated[-1]) == pipe.seg_token_id:
        assert out.seg_hidden.shape[0] == 0
    assert out.masks.shape == (1, 61, 97) and not out.masks.any()
    with pytest.raises(LiteLVLMError, match="prunes inside the LLM"):
        pipe.ground(prep, "fastv", 8)


def test_a_video_reads_the_first_seg(pipe):
    """A video's generated answer: the first [SEG]'s masks on every frame (``sa2va_eval_ref_vos.py``
    L196-201)."""
    frames = [noise_image(40, 56, seed=i) for i in range(2)]
    prep = pipe.with_sentences(pipe.prepare_video(frames), ["the bird"], answer="generate")
    with _ForceSeg(pipe, {0, 2}):
        want_ids, want_seg = official_generate(pipe, prep)
    with _ForceSeg(pipe, {0, 2}), torch.no_grad():
        out = pipe.ground(prep, "none")
    assert torch.equal(out.generated, want_ids.cpu())
    torch.testing.assert_close(out.seg_hidden, want_seg[:1], rtol=1e-5, atol=1e-5)
    assert out.masks.shape == (1, 2, 40, 56)
