"""Sa2VA-Qwen3-VL against its official code (bytedance/Sa2VA @9832e1a, ``projects/sa2va/hf/models_qwen3vl/``)
on random weights of the tiny preset: the written checkpoint loads strictly into the official
``Sa2VAChatModelQwen`` (``modeling_sa2va_qwen.py`` L31-63: ``Qwen3VLForConditionalGeneration`` as ``model``,
SAM 2 as ``grounding_encoder``, ``text_hidden_fcs``), and the official module tree's forward (transformers'
``Qwen3VLForConditionalGeneration``, DeepStack included) on the prompt gives the ``[SEG]`` row's final state,
whose ``text_hidden_fcs`` prompt through the official SAM 2 (``sam2.py`` ``language_embd_inference``,
``predict_forward`` L239-252) gives the masks ``ground`` gives, over odd image sizes and on a video. The
official ``SAM2()`` builds Hiera-L at 1024 px (``sam2.py`` L76-134); here its predictor is the official
``SAM2VideoPredictor`` at the tiny preset's sizes (:func:`tests.sa2va_official.tiny_sam2`), the wrapper's
``__init__`` tail (L128-134) set as written. Skipped when ``../shared`` is absent.

The ``[SEG]`` state is the one the official code reads under its pin (``pyproject.toml`` ``latest``:
transformers 4.57.0): ``predict_forward`` takes ``generate_output.hidden_states``' last entry (L232-237), and
transformers 4.57's ``Qwen3VLForConditionalGeneration.forward`` is wrapped by ``@check_model_inputs``
(``utils/generic.py`` L947-1104), which collects ``hidden_states`` from the outputs of the decoder layers and
puts ``last_hidden_state`` in the last place only where the output has one (L1084-1091): the causal LM's has
none, so the last entry is the last decoder layer's output BEFORE the final RMSNorm. Under transformers 5 the
same call returns the normed state there; :func:`pinned_last_state` takes the 4.57 entry explicitly, by a
forward hook on the last decoder layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests import sa2va_official as off
from tests.fixtures.images import noise_image as _image
from tests.litelvlm.sa2va.test_protocol_image_processor import official_pixel_values

pytestmark = pytest.mark.skipif(not off.available("qwen3-vl"),
                                reason="the official Sa2VA code (../shared/official/Sa2VA) is absent")

BACKBONE = "qwen3-vl"
ODD_SIZES = [pytest.param((1, 1), marks=pytest.mark.slow), pytest.param((7, 300), marks=pytest.mark.slow),
             (91, 137), pytest.param((333, 41), marks=pytest.mark.slow)]
#: Qwen3-VL's processor: patch 16, mean and std 0.5 (``preprocessor_config.json`` of Qwen3-VL-4B-Instruct)
QWEN3_PIXELS = {"patch": 16, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}


@pytest.fixture(scope="module")
def tiny(qwen3_tiny):
    return qwen3_tiny.folder, qwen3_tiny.parts, qwen3_tiny.pipe


def pinned_last_state(language_model, run, **inputs):
    """(``run(**inputs)``, the last decoder layer's outputs (B, S, h) of each forward it makes): what
    transformers 4.57's ``@check_model_inputs`` puts last in ``hidden_states`` (module docstring)."""
    seen: list[torch.Tensor] = []

    def keep(module, args, output) -> None:
        seen.append(output[0] if isinstance(output, tuple) else output)

    handle = language_model.layers[-1].register_forward_hook(keep)
    try:
        return run(**inputs), seen
    finally:
        handle.remove()


def official_model(folder, parts):
    """The official ``Sa2VAChatModelQwen`` of ``models_qwen3vl/`` with the tiny SAM 2, the folder's tensors
    loaded strictly."""
    from safetensors.torch import load_file

    m = off.official("modeling_sa2va_qwen", BACKBONE)
    sam = off.official("sam2", BACKBONE)
    config = off.official("configuration_sa2va_chat", BACKBONE).Sa2VAChatConfigQwen(**{
        k: v for k, v in parts.config.items() if k not in ("architectures", "model_type", "auto_map")})

    def tiny_sam2():
        wrapper = sam.SAM2.__new__(sam.SAM2)
        torch.nn.Module.__init__(wrapper)
        wrapper.sam2_model = off.tiny_sam2(parts.sam2.sam2_size, parts.sam2.image_size)
        wrapper.hidden_dim = wrapper.sam2_model.hidden_dim                       # sam2.py L130-134
        wrapper.img_mean, wrapper.img_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        return wrapper

    saved, m.SAM2 = m.SAM2, tiny_sam2
    try:
        model = m.Sa2VAChatModelQwen(config)
    finally:
        m.SAM2 = saved
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def official(tiny):
    folder, parts, _ = tiny
    return official_model(folder, parts)


def test_the_checkpoint_is_the_official_module_tree(tiny, official):
    """Every tensor of the written folder has its place in the official module tree (strict load), which
    holds ``Qwen3VLForConditionalGeneration``; the config is the official ``Sa2VAChatConfigQwen``
    (``Qwen3VLConfig``) with Qwen3's 26 special tokens + 5 added rows from 384."""
    _, parts, pipe = tiny
    assert type(official.model).__name__ == "Qwen3VLForConditionalGeneration"
    assert official.config.text_config.vocab_size == 384 + 26 + 5 == pipe.seg_token_id + 5
    assert official.config.template == "qwen_chat"
    mine = parts.qwen.state_dict()
    assert all(torch.equal(v, mine[k]) for k, v in official.model.state_dict().items())


def official_image_masks(pipe, official, image, sentence: str, pinned: bool = True):
    """``predict_forward``'s image path on the teacher-forced prompt: the official module tree's forward on
    the processor's ids and the official pixels, the ``[SEG]`` row's state as transformers 4.57 gives it
    (``pinned``: the last decoder layer's output; else transformers 5's, the final normed state),
    ``text_hidden_fcs``, the official SAM 2; (prompt (1, 256), masks (1, H, W))."""
    from litelvlm.sa2va.protocol import image_question

    text = pipe.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": image},
                                      {"type": "text",
                                       "text": image_question(sentence).replace("<image>", "")}]}],
        add_generation_prompt=True, tokenize=False) + "It is [SEG]."
    seen = official_pixel_values(image, pipe.min_pixels, pipe.max_pixels, **QWEN3_PIXELS)
    prep = pipe.prepare(image, [sentence])
    inputs = pipe.processor(text=[text], images=prep.llm_images, do_resize=False, return_tensors="pt")
    assert torch.equal(inputs["input_ids"][0], prep.input_ids) and inputs["pixel_values"].shape == seen.shape
    inputs["pixel_values"] = seen
    with torch.no_grad():
        out, seen = pinned_last_state(official.model.model.language_model, official.model, **inputs,
                                      output_hidden_states=True)
        lm = official.model.model.language_model
        assert torch.equal(lm.norm(seen[-1]), out.hidden_states[-1])   # transformers 5: the normed state
        state = (seen[-1] if pinned else out.hidden_states[-1])[0]
        prompt = official.text_hidden_fcs(state[inputs["input_ids"][0] == pipe.seg_token_id])
    frames = pipe.sam2.preprocess(image)
    return prompt, off.official_masks(official.grounding_encoder.sam2_model, frames, prompt,
                                      (image.height, image.width), num_cond=1)


@pytest.mark.parametrize("size", ODD_SIZES)
def test_the_image_path_is_the_official_forward_and_sam2(tiny, official, size):
    """Our pipeline (the pixels, DeepStack by hooks, the ``[SEG]`` row, SAM 2 on transformers) gives the
    official forward's prompt and the official SAM 2's masks, over odd image sizes."""
    _, _, pipe = tiny
    image = _image(*size, seed=sum(size))
    prep = pipe.prepare(image, ["the cat"])
    assert torch.equal(pipe._image(image)[1]["pixel_values"],
                       official_pixel_values(image, pipe.min_pixels, pipe.max_pixels, **QWEN3_PIXELS))
    out = pipe.ground(prep, "none", pipe.num_visual(prep))
    prompt, ref = official_image_masks(pipe, official, image, "the cat")
    torch.testing.assert_close(out.prompt_embeddings[:, 0], prompt, atol=1e-5, rtol=1e-5)
    assert ref.shape == (1, *size) and torch.equal(out.masks.cpu(), ref)


def test_the_normed_option_is_transformers_5s_last_entry(tiny, official):
    """``seg_state="normed"`` (this project's option): the ``[SEG]`` row's final normed state, the last entry
    of ``hidden_states`` as transformers 5 returns it (what this project read before), on the image and on a
    video; the default (``unnormed``) is its input to the final norm."""
    from litelvlm.registry.families import load_pipeline

    folder, _, pipe = tiny
    normed = load_pipeline(str(folder), seg_state="normed")
    image = _image(91, 137, seed=228)
    out = normed.ground(normed.prepare(image, ["the cat"]), "none")
    prompt, ref = official_image_masks(normed, official, image, "the cat", pinned=False)
    torch.testing.assert_close(out.prompt_embeddings[:, 0], prompt, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.masks.cpu(), ref)
    default = pipe.ground(pipe.prepare(image, ["the cat"]), "none")
    torch.testing.assert_close(pipe.language_model.norm(default.seg_hidden), out.seg_hidden, atol=1e-6,
                               rtol=0)
    assert not torch.allclose(default.seg_hidden, out.seg_hidden)
    frames = [_image(50, 70, seed=i) for i in range(2)]
    video = [p.with_sentences(p.prepare_video(frames), ["the bird?"]) for p in (pipe, normed)]
    mine, theirs = (p.ground(v, "none").seg_hidden for p, v in zip((pipe, normed), video))
    torch.testing.assert_close(pipe.language_model.norm(mine), theirs, atol=1e-6, rtol=0)


@pytest.mark.parametrize("num_frames", [1, pytest.param(7, marks=pytest.mark.slow)])
def test_the_video_path_is_predict_forward(tiny, official, num_frames):
    """A video (method none): the first min(5, T) frames as images of one prompt with the Ref-VOS question,
    the official forward's ``[SEG]`` state under the pin (the last decoder layer's output), the official SAM 2
    memory over every frame (``predict_forward`` video branch, L119-165, L239-252)."""
    from litelvlm.sa2va.protocol import video_question

    _, _, pipe = tiny
    rng = np.random.default_rng(num_frames)
    frames = [Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)) for _ in range(num_frames)]
    prep = pipe.with_sentences(pipe.prepare_video(frames), ["the bird?"])
    out = pipe.ground(prep, "none", pipe.num_visual(prep))
    seen = prep.llm_images
    text = pipe.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": f} for f in seen]
          + [{"type": "text", "text": video_question("the bird?").replace("<image>", "")}]}],
        add_generation_prompt=True, tokenize=False) + "It is [SEG]."
    inputs = pipe.processor(text=[text], images=seen, do_resize=False, return_tensors="pt")
    assert torch.equal(inputs["input_ids"][0], prep.input_ids)
    bounds = (pipe.min_pixels, pipe.max_pixels)
    inputs["pixel_values"] = torch.cat([official_pixel_values(f, *bounds, **QWEN3_PIXELS)
                                        for f in frames[:len(seen)]])
    with torch.no_grad():
        _, seen = pinned_last_state(official.model.model.language_model, official.model, **inputs,
                                    output_hidden_states=True)
        prompt = official.text_hidden_fcs(seen[-1][0][inputs["input_ids"][0] == pipe.seg_token_id])
    ref = off.official_logits(official.grounding_encoder.sam2_model, prep.video.pixels.float(), prompt,
                              (50, 70), num_cond=min(5, num_frames))
    torch.testing.assert_close(out.mask_logits[0], ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.masks[0], ref.sigmoid() > 0.5)


def test_the_kept_tokens_carry_their_deepstack_features(tiny, official):
    """This project's adaptation, through the official text model: a selection at the LLM input is the
    official ``Qwen3VLTextModel`` run on the kept tokens at their M-RoPE ids with ``visual_pos_masks`` on
    their rows and ``deepstack_visual_embeds`` their own features; the ``[SEG]`` state is its last decoder
    layer's output, as under the pin."""
    _, _, pipe = tiny
    prep = pipe.prepare(_image(91, 137, seed=4), ["the cat"])
    for method, k in (("divprune", 5), ("litelvlm", 3)):
        out = pipe.ground(prep, method, k)
        kept = out.kept_indices.cpu()
        layout = pipe.layout(prep, k)
        embeds = pipe.sequence_embeds(prep, prep.visual[kept])
        rows = torch.zeros(1, layout.seq_len, dtype=torch.bool)
        rows[0, layout.image_start:layout.image_start + k] = True
        lm = official.model.model.language_model
        with torch.no_grad():
            _, seen = pinned_last_state(
                lm, lm, inputs_embeds=embeds, position_ids=pipe.kept_positions(prep, kept),
                attention_mask=torch.ones(1, layout.seq_len, dtype=torch.long), visual_pos_masks=rows,
                deepstack_visual_embeds=[f[kept] for f in prep.deepstack])
        assert torch.equal(out.seg_hidden, seen[-1][0, layout.seg_predictors]), method


def test_the_generated_answer_is_the_official_generate(tiny, official):
    """``answer="generate"``: ``predict_forward``'s ``model.generate(..., do_sample=False,
    output_hidden_states=True)`` (L214-220) on the official module tree (its DeepStack in the prefill only),
    six greedy tokens, ``[SEG]`` forced at steps 1 and 3 on both sides (random weights never pick it); the
    ``[SEG]`` rows' states as ``get_seg_hidden_states`` reads them from the steps' last ``hidden_states``
    entry under the pin (L232-237, L255-260: the last decoder layer's outputs)."""
    from types import SimpleNamespace

    from litelvlm.sa2va.protocol import image_question
    from tests.litelvlm.sa2va.test_generate import _ForceSeg

    _, _, pipe = tiny
    image = _image(61, 97, seed=2)
    prep = pipe.with_sentences(pipe.prepare_image(image), ["the cat"], answer="generate")
    saved, pipe.max_new_tokens = pipe.max_new_tokens, 6
    try:
        with _ForceSeg(pipe, {1, 3}), torch.no_grad():
            ours = pipe.ground(prep, "none", pipe.num_visual(prep))
    finally:
        pipe.max_new_tokens = saved
    text = pipe.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": image},
                                      {"type": "text",
                                       "text": image_question("the cat").replace("<image>", "")}]}],
        add_generation_prompt=True, tokenize=False)
    inputs = pipe.processor(text=[text], images=prep.llm_images, do_resize=False, return_tensors="pt")
    inputs["pixel_values"] = official_pixel_values(image, pipe.min_pixels, pipe.max_pixels, **QWEN3_PIXELS)
    theirs = SimpleNamespace(qwen=official.model, seg_token_id=pipe.seg_token_id)
    with _ForceSeg(theirs, {1, 3}), torch.no_grad():
        got, seen = pinned_last_state(official.model.model.language_model, official.model.generate, **inputs,
                                      max_new_tokens=6, do_sample=False, output_hidden_states=True,
                                      return_dict_in_generate=True)
    assert torch.equal(ours.generated.cpu(), got.sequences[0, inputs["input_ids"].shape[1]:])
    hidden = torch.cat([step[0] for step in seen])
    ids = got.sequences[0][:-1]
    want = hidden[-len(ids):][ids == pipe.seg_token_id]
    assert want.shape[0] == 2
    torch.testing.assert_close(ours.seg_hidden, want, atol=1e-5, rtol=1e-5)
