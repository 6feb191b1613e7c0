"""Sa2VA-Qwen2.5-VL against its official code (bytedance/Sa2VA @9832e1a) on random weights of the tiny preset:
the released checkpoint layout (loaded into the official module tree), the SAM 2 input, the ``[SEG]`` rows,
and the masks of the official ``SAM2VideoPredictor`` over odd image sizes. Skipped when ``../shared`` is
absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests import sa2va_official as off
from tests.fixtures.images import noise_image as _image

pytestmark = pytest.mark.skipif(not off.available(),
                                reason="the official Sa2VA code (../shared/official/Sa2VA) is absent")

ODD_SIZES = [(1, 1), (7, 300), (91, 137), (333, 41), (480, 640)]


@pytest.fixture(scope="module")
def tiny():
    from litelvlm.sa2va.checkpoint import load_sa2va, random_sa2va_dir

    folder = random_sa2va_dir("tiny", 0)
    return folder, load_sa2va(str(folder))


@pytest.fixture(scope="module")
def official_sam2(tiny):
    from safetensors.torch import load_file

    from litelvlm.sa2va.checkpoint import SAM_PREFIX

    folder, parts = tiny
    model = off.tiny_sam2(parts.sam2.sam2_size, parts.sam2.image_size)
    sd = {k[len(SAM_PREFIX):]: v for k, v in load_file(str(folder / "model.safetensors")).items()
          if k.startswith(SAM_PREFIX)}
    model.load_state_dict(sd, strict=True)   # every SAM 2 tensor under its official name, none missing
    return model


def test_checkpoint_names_are_the_official_module_tree(tiny):
    """``model.*`` loads into a wrapper holding ``Qwen2_5_VLForConditionalGeneration`` as ``model`` and
    ``text_hidden_fcs.*`` into the official ``nn.Sequential`` (modeling_sa2va_qwen.py L38-61), strictly."""
    from safetensors.torch import load_file
    from transformers import Qwen2_5_VLForConditionalGeneration

    from litelvlm.sa2va.checkpoint import _qwen_config

    folder, parts = tiny
    sd = load_file(str(folder / "model.safetensors"))
    wrapper = torch.nn.Module()
    wrapper.model = Qwen2_5_VLForConditionalGeneration(_qwen_config(parts.config))
    h = parts.qwen.config.text_config.hidden_size
    wrapper.text_hidden_fcs = torch.nn.Sequential(torch.nn.Linear(h, h), torch.nn.ReLU(inplace=True),
                                                  torch.nn.Linear(h, parts.sam2.hidden_dim),
                                                  torch.nn.Dropout(0.0))
    mine = {k: v for k, v in sd.items() if k.startswith(("model.", "text_hidden_fcs."))}
    missing, unexpected = wrapper.load_state_dict(mine, strict=False)
    assert not unexpected and missing in ([], ["model.lm_head.weight"])
    assert parts.config["architectures"] == ["Sa2VAChatModelQwen"] and parts.config[
        "model_type"] == "sa2va_chat"
    config = off.official("configuration_sa2va_chat").Sa2VAChatConfigQwen(**{
        k: v for k, v in parts.config.items() if k not in ("architectures", "model_type", "auto_map")})
    assert config.text_config.vocab_size == parts.qwen.config.text_config.vocab_size == 411


@pytest.mark.parametrize("size", ODD_SIZES)
@pytest.mark.parametrize("video", [False, True])
def test_sam_pixels_are_the_official(size, video):
    from litelvlm.sa2va.sam2_head import sam_pixels

    m = off.official("modeling_sa2va_qwen")
    image = _image(*size)
    g = torch.from_numpy(m.DirectResize(target_length=128).apply_image(np.array(image))).permute(
        2, 0, 1).contiguous()
    # L183: the one image is cast to bfloat16 before preprocess_image; a video's frames are not
    if not video:
        g = g.to(torch.bfloat16)
    norm = types_self()
    ref = off.official("sam2").SAM2.preprocess_image(norm, g).to(torch.bfloat16)
    assert torch.equal(sam_pixels(image, 128, video=video), ref)


def types_self():
    import types

    return types.SimpleNamespace(img_mean=(0.485, 0.456, 0.406), img_std=(0.229, 0.224, 0.225))


def test_seg_rows_are_get_seg_hidden_states():
    from litelvlm.sa2va.protocol import seg_rows

    m = off.official("modeling_sa2va_qwen")
    seq = torch.tensor([5, 9, 7, 406, 3, 406, 8, 2])          # prompt + generated, as generate returns it
    # one state per input row
    hidden = torch.arange(len(seq) - 1, dtype=torch.float32)[:, None].expand(-1, 4)
    got = m.get_seg_hidden_states(hidden, seq[:-1], seg_id=406)
    assert torch.equal(got[:, 0].long(), seg_rows(seq, 406))


@pytest.mark.parametrize("size", ODD_SIZES)
def test_masks_are_the_official_sam2_on_one_image(tiny, official_sam2, size):
    """Our SAM 2 path (transformers' modules, the prompt appended to two not-a-point rows, best IoU, no gate,
    two resizes) gives the official ``SAM2VideoPredictor``'s masks for the same prompt."""
    _, parts = tiny
    image = _image(*size, seed=sum(size))
    prompt = torch.randn(1, parts.sam2.hidden_dim, generator=torch.Generator().manual_seed(sum(size)))
    features = parts.sam2.encode_image(parts.sam2.preprocess(image))
    got = parts.sam2.decode(features, prompt[None], size)
    frames = parts.sam2.preprocess(image)
    ref = off.official_masks(official_sam2, frames, prompt, size, num_cond=1)
    assert ref.shape == (1, *size)
    mine = got.logits > 0
    assert (mine != ref).float().mean() < 1e-3, "masks differ"
    assert torch.equal(mine, ref)


def test_the_pipeline_reads_the_final_state_of_the_seg_row(tiny, official_sam2):
    """The whole image path on the prompt: the final hidden state of the row holding [SEG] (generate's
    ``hidden_states[-1]``) -> text_hidden_fcs -> SAM 2, as ``predict_forward`` L226-252 does."""
    from litelvlm.registry.families import load_pipeline
    from litelvlm.sa2va.protocol import image_question

    folder, parts = tiny
    pipe = load_pipeline(str(folder))
    image = _image(61, 97, seed=3)
    prep = pipe.prepare(image, ["the cat"])
    out = pipe.ground(prep, "none", pipe.num_visual(prep))
    made_text = parts.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": image},
                                      {"type": "text",
                                       "text": image_question("the cat").replace("<image>", "")}]}],
        add_generation_prompt=True, tokenize=False)
    assert made_text + "It is [SEG]." == pipe.processor.tokenizer.decode(prep.input_ids).replace(
        "<|image_pad|>" * pipe.num_visual(prep), "<|image_pad|>")
    from tests.litelvlm.sa2va.test_protocol_image_processor import official_pixel_values

    # the pixels as the official pin's Qwen2VLImageProcessorFast makes them, written out with PIL and
    # torchvision
    pixels = official_pixel_values(image, pipe.min_pixels, pipe.max_pixels)
    inputs = parts.processor(text=[made_text + "It is [SEG]."], images=prep.llm_images, do_resize=False,
                             return_tensors="pt")
    assert inputs["pixel_values"].shape == pixels.shape
    inputs["pixel_values"] = pixels
    with torch.no_grad():
        hidden = parts.qwen(**inputs, output_hidden_states=True).hidden_states[-1][0]
    seg = hidden[inputs["input_ids"][0] == pipe.seg_token_id]
    prompt = parts.fcs(seg)
    ref = off.official_masks(official_sam2, parts.sam2.preprocess(image), prompt, (61, 97), num_cond=1)
    assert torch.equal(out.masks.cpu(), ref)


@pytest.mark.parametrize("num_frames", [1, 7, pytest.param(9, marks=pytest.mark.slow)])
def test_video_memory_is_the_official(tiny, official_sam2, num_frames):
    """The video path's SAM 2 (``language_embd_inference``): the prompt on the first min(5, T) frames, the
    memory over the rest, no object-score gate, two resizes -- the official logits and masks, 1 frame to 9."""
    from litelvlm.sa2va.video import propagate, video_parts

    _, parts = tiny
    rng = np.random.default_rng(num_frames)
    frames = [Image.fromarray(rng.integers(0, 256, (45, 77, 3), dtype=np.uint8)) for _ in range(num_frames)]
    prompt = 3 * torch.randn(1, parts.sam2.hidden_dim, generator=torch.Generator().manual_seed(num_frames))
    vp = video_parts(parts.sam2, frames)
    assert vp.llm_frames == min(5, num_frames)
    logits = parts.sam2.upscale(propagate(parts.sam2, vp.pixels, prompt, vp.llm_frames), (45, 77))
    ref = off.official_logits(official_sam2, vp.pixels.float(), prompt, (45, 77), num_cond=vp.llm_frames)
    assert logits.shape == ref.shape == (num_frames, 45, 77)
    torch.testing.assert_close(logits, ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(logits > 0, ref.sigmoid() > 0.5)


@pytest.mark.parametrize("num_frames", [1, pytest.param(7, marks=pytest.mark.slow)])
def test_the_video_pipeline_is_predict_forward(tiny, official_sam2, num_frames):
    """A video through the pipeline (method none, all N): the first min(5, T) frames as images of one prompt
    with the Ref-VOS question, the final state of the [SEG] row, text_hidden_fcs, the official SAM 2 memory
    over every frame (``predict_forward`` video branch, L107-146, L240-252)."""
    from litelvlm.registry.families import load_pipeline
    from litelvlm.sa2va.protocol import video_question

    folder, parts = tiny
    pipe = load_pipeline(str(folder))
    rng = np.random.default_rng(num_frames)
    frames = [Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)) for _ in range(num_frames)]
    prep = pipe.with_sentences(pipe.prepare_video(frames), ["the bird?"])
    out = pipe.ground(prep, "none", pipe.num_visual(prep))
    assert out.masks.shape == (1, num_frames, 50, 70) and pipe.mask_shape(prep) == (num_frames, 50, 70)
    seen = prep.llm_images
    assert len(seen) == min(5, num_frames)
    text = parts.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image", "image": f} for f in seen]
          + [{"type": "text", "text": video_question("the bird?").replace("<image>", "")}]}],
        add_generation_prompt=True, tokenize=False) + "It is [SEG]."
    inputs = parts.processor(text=[text], images=seen, do_resize=False, return_tensors="pt")
    assert torch.equal(inputs["input_ids"][0], prep.input_ids)
    from tests.litelvlm.sa2va.test_protocol_image_processor import official_pixel_values

    pixels = torch.cat(
        [official_pixel_values(f, pipe.min_pixels, pipe.max_pixels) for f in frames[:len(seen)]])
    assert inputs["pixel_values"].shape == pixels.shape
    inputs["pixel_values"] = pixels       # the official pin's pixels, written out independently
    with torch.no_grad():
        hidden = parts.qwen(**inputs, output_hidden_states=True).hidden_states[-1][0]
    prompt = parts.fcs(hidden[inputs["input_ids"][0] == pipe.seg_token_id])
    ref = off.official_logits(official_sam2, prep.video.pixels.float(), prompt, (50, 70),
                              num_cond=min(5, num_frames))
    torch.testing.assert_close(out.mask_logits[0], ref, atol=1e-4, rtol=1e-4)
    assert torch.equal(out.masks[0], ref.sigmoid() > 0.5)
    # this project's adaptation: the frames' blocks joined, K of N kept
    pruned = pipe.ground(prep, "divprune", 4)
    frames_seen = min(5, num_frames)
    assert pruned.masks.shape == out.masks.shape
    assert pruned.seq_len == len(prep.input_ids) - 2 * (frames_seen - 1) - (pipe.num_visual(prep) - 4)


@pytest.mark.slow
def test_full_size_sam2_names_and_shapes_are_the_official():
    """The released SAM 2 (``SAM2()``, sam2.py L76-132: Hiera-L at 1024 px) built by the official code on the
    CPU has exactly the tensor names and shapes the 3B preset writes under
    ``grounding_encoder.sam2_model.``."""
    from litelvlm.sa2va.checkpoint import SAM_PREFIX, build_sa2va, sa2va_tensors

    ref = off.official("sam2").SAM2().sam2_model.state_dict()   # its constructor reads values: not on meta
    qwen, fcs, sam2, tracking = build_sa2va("3b", device="meta")
    mine = {k[len(SAM_PREFIX):]: tuple(v.shape) for k, v in sa2va_tensors(qwen, fcs, sam2, tracking).items()
            if k.startswith(SAM_PREFIX)}
    assert mine == {k: tuple(v.shape) for k, v in ref.items()}
