"""``answer="generate"`` on UniPixel: the official greedy generation (PolyU-ChenLab/UniPixel @5c8e941
``unipixel/eval/infer_seg.py`` L190-197, ``model/qwen2_5_vl.py`` L348-350) after a prefill pruned at the LLM
input.

Transcribed here: ``model.generate(**data, do_sample=False, ..., max_new_tokens)`` on the stock model, with
UniPixel's ``cache_state_hook`` (L21-22, a pre-hook on the final norm, L52) and, at every forward, the last
row's state kept when its argmax is ``<|seg|>`` (L348-350). Random weights never pick ``<|seg|>``, so a
forward hook on the LM head adds to its logit at chosen steps (the same hook on both sides)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import noise_image as _image

STEPS = 5


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.registry.families import load_pipeline

    p = load_pipeline("unipixel-tiny-random:0")
    p.max_new_tokens = STEPS
    return p


class _ForceSeg:
    """A forward hook on the LM head: +1e4 on ``<|seg|>``'s logit at the last row of the forwards in
    ``steps``."""

    def __init__(self, pipe, steps: set[int]):
        self.pipe, self.steps, self.calls = pipe, steps, 0

    def __call__(self, module, args, output):
        if self.calls in self.steps:
            output = output.clone()
            output[..., -1 if output.dim() == 3 else slice(None), self.pipe.seg_token_id] += 1e4
        self.calls += 1
        return output

    def __enter__(self):
        self.handle = self.pipe.lm_head.register_forward_hook(self)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def official_generate(pipe, image: Image.Image, expression: str):
    """(generated ids, the states of the steps whose argmax is <|seg|>) as UniPixel's inference makes them."""
    from litelvlm.unipixel.protocol import prepare_inputs

    data = prepare_inputs(pipe.processor, image, expression, answer="generate").inputs
    state, seg = {}, []

    def cache_state_hook(module, inputs, outputs=None):  # qwen2_5_vl.py L21-22
        state["state"] = inputs[0] if isinstance(inputs, tuple) else inputs

    def per_forward(module, args, output):  # L348-350: case 2, the output contains <seg>
        if output[0, -1].argmax() == pipe.seg_token_id:
            seg.append(state["state"][0, -1].clone())

    handles = [pipe.qwen.model.language_model.norm.register_forward_pre_hook(cache_state_hook),
               pipe.qwen.lm_head.register_forward_hook(per_forward)]
    try:
        with torch.no_grad():
            out = pipe.qwen.generate(**data, do_sample=False, temperature=None, top_k=None, top_p=None,
                                     repetition_penalty=None, max_new_tokens=STEPS)
    finally:
        for h in handles:
            h.remove()
    return out[0, data["input_ids"].shape[1]:], seg


@pytest.mark.parametrize("size", [(97, 131), (61, 200)])
def test_unpruned_generation_equals_unipixels(pipe, size):
    image = _image(*size)
    prep = pipe.with_sentences(pipe.prepare_image(image), ["the dog on the left"], answer="generate")
    assert int((prep.input_ids == pipe.seg_token_id).sum()) == 0  # the official prompt: no answer
    with _ForceSeg(pipe, {1, 3}):
        want_ids, want_seg = official_generate(pipe, image, "the dog on the left")
    with _ForceSeg(pipe, {1, 3}), torch.no_grad():
        out = pipe.ground(prep, "none")
    assert torch.equal(out.generated, want_ids.cpu()) and len(want_seg) == 2
    torch.testing.assert_close(out.seg_hidden[0], want_seg[0], rtol=1e-5, atol=1e-5)  # the first <seg>'s mask
    with torch.no_grad():
        sam = pipe.sam2
        want = sam.decode(prep.sam_features, pipe.seg_head(want_seg[0][None]), prep.image_size)
        logits = sam.upscale(want.low_res, prep.image_size).float()
    torch.testing.assert_close(out.mask_logits, logits, rtol=1e-4, atol=1e-4)
    assert int(out.seg_positions[0]) == out.seq_len  # step 1: the row of the first generated token


def test_no_seg_generated_gives_the_official_failure_mask(pipe):
    prep = pipe.with_sentences(pipe.prepare_image(_image(97, 131)), ["a cat"], answer="generate")
    with torch.no_grad():
        out = pipe.ground(prep, "random", 7)
    assert out.seg_hidden.shape[0] == 0 and out.masks.shape == (1, 97, 131) and not out.masks.any()
    assert 1 <= len(out.generated) <= STEPS and out.seq_len == pipe.layout(prep, 7).seq_len


def test_a_pruned_prefill_decodes_from_its_own_positions(pipe):
    """K kept tokens at the LLM input (their 3-D ids kept, the family's rule): the same ids as decoding by
    hand with the full forward over the growing sequence (no cache)."""
    prep = pipe.with_sentences(pipe.prepare_image(_image(61, 200)), ["a cat"], answer="generate")
    with _ForceSeg(pipe, {2}), torch.no_grad():
        out = pipe.ground(prep, "divprune", 9)
    kept = out.selection.indices
    embeds = pipe.sequence_embeds(prep, pipe.visual_tokens(prep)[kept])
    pos = pipe.kept_positions(prep, kept).to(embeds.device)
    ids = []
    with _ForceSeg(pipe, set()), torch.no_grad():
        for _ in range(len(out.generated)):
            final = pipe.final_hidden(embeds, pos)
            token = int(pipe.lm_head(final[:, -1]).argmax(-1)[0])
            ids.append(pipe.seg_token_id if len(ids) == 2 else token)
            embeds = torch.cat([embeds, pipe.language_model.embed_tokens(torch.tensor([[ids[-1]]]))], 1)
            pos = torch.cat([pos, pos[..., -1:] + 1], -1)
    assert out.generated.tolist() == ids and ids[2] == pipe.seg_token_id
    assert len(ids) == STEPS or ids[-1] in pipe.stop_ids
    assert out.seg_hidden.shape[0] == 1 and out.masks.shape == (1, 61, 200)


def test_methods_pruning_inside_the_llm_are_refused(pipe):
    prep = pipe.with_sentences(pipe.prepare_image(_image(97, 131)), ["a cat"], answer="generate")
    with pytest.raises(LiteLVLMError, match="prunes inside the LLM"):
        pipe.ground(prep, "fastv", 8)
    with pytest.raises(LiteLVLMError, match="answer must be one of"):
        pipe.with_sentences(prep, ["a cat"], answer="greedy")
