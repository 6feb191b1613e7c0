"""UniPixel's video path (litelvlm.unipixel.video, litelvlm.unipixel.video_pipeline) against the official code
on random weights of the tiny preset.

Official code: PolyU-ChenLab/UniPixel @ 5c8e941 ("Fix sam2 config"). Transcribed here:
``unipixel/utils/io.py`` L49-76 (``load_frames``: which frames the LLM sees) and
``unipixel/eval/infer_seg.py`` L88-136 (the per-sample inputs of the referring-video evaluation);
``fetch_video`` / ``fetch_image`` / ``smart_resize`` and the message are the transcriptions of
``tests/litelvlm/unipixel/test_protocol.py`` (``dataset/utils.py`` L59-147, L311-327; ``infer_seg.py``
L115-127), the M-RoPE index that of ``tests/official_qwen_rope.py`` (transformers 4.53, UniPixel's pin). The
model chain is the one of ``tests/litelvlm/unipixel/test_pipeline.py`` (``model/qwen2_5_vl.py`` L21-22, L52,
L300-301, L343-346), with SAM 2 on frame 0 of the whole video (L361-363).
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from litelvlm.errors import LiteLVLMError
from litelvlm.unipixel import video as V
from tests.fixtures.images import noise_video as _video
from tests.litelvlm.unipixel.test_protocol import (  # noqa: E402
    official_fetch_video_list,
    official_messages,
    official_question,
)
from tests.official_qwen_rope import get_rope_index as official_rope_index  # noqa: E402


# -- transcriptions ---------------------------------------------------------------------------------
def official_sample_inds(vlen, sample_frames=-1):
    """unipixel/utils/io.py L52-68 (``sample_type='uniform'``, an int ``sample_frames``)."""
    if sample_frames > 0 and vlen > sample_frames:
        inds = np.arange(0, vlen, (vlen - 1) / (sample_frames - 1))[:sample_frames].round().astype(
            int).tolist()
        assert len(inds) == sample_frames
    else:
        inds = list(range(vlen))
    return inds


def official_sample_text_and_frames(processor, frames, query, sample_frames=16):
    """infer_seg.py L88-133 on frames given as PIL images (``load_frames`` L70-75 keeps every frame for SAM 2
    and the sampled ones for the LLM; fetch_image opens a path with Image.open, L122-123, so a PIL frame is
    the same)."""
    inds = official_sample_inds(len(frames), sample_frames)
    paths = [frames[i] for i in inds]
    data_type = 'seg_video' if len(frames) > 1 else 'seg_image'   # segmentation.py L546
    question = official_question(query, data_type)
    messages = official_messages(paths, question, sample_frames)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    videos, fps = official_fetch_video_list(messages[0]["content"][0])   # process_vision_info, L131
    return inds, question, text, videos, fps


# -- 1. the frames ------------------------------------------------------------------------------------
def test_sampled_frames_equal_the_official_for_every_length():
    for sample_frames in (2, 3, 5, 8, 15, 16, 17, 32):
        for vlen in range(1, 200):
            assert V.sample_indices(vlen, sample_frames) == official_sample_inds(vlen, sample_frames), (vlen,
                                                                                                       sample_frames)
    assert V.sample_indices(7, 0) == list(range(7))   # sample_frames <= 0: every frame, as the official
    with pytest.raises(LiteLVLMError):
        V.sample_indices(5, 1)                         # the official divides by zero
    with pytest.raises(LiteLVLMError):
        V.sample_indices(0)


@pytest.fixture(scope="module")
def tiny_processor(pipe):
    return pipe.processor


@pytest.mark.parametrize(("n", "h", "w"), [(3, 61, 89), (17, 123, 45),
                                           *(pytest.param(*v, marks=pytest.mark.slow) for v in
                                             [(1, 97, 131), (16, 40, 300), (40, 30, 30)])])
def test_video_inputs_equal_the_official(tiny_processor, n, h, w):
    """Sampled frames, pixels, question, prompt text and the processor's inputs equal the official
    sample's."""
    frames = _video(n, h, w, seed=n)
    query = random.Random(n).choice(["The red circle moving left.", "a blue square", "the man in a hat"])
    inds, question, text, videos, fps = official_sample_text_and_frames(tiny_processor, frames, query)
    ours = V.prepare_video_inputs(tiny_processor, frames, query)
    assert ours.sampled == inds and ours.question == question and ours.text == text and fps == 2.0
    assert ours.frame_size == (h, w) and len(ours.frames) == len(videos) == len(inds) + len(inds) % 2
    for a, b in zip(ours.frames, videos, strict=True):
        assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    want = tiny_processor(text=[text], videos=[videos], do_resize=False, return_tensors="pt")
    for key in ("input_ids", "pixel_values_videos", "video_grid_thw"):
        assert torch.equal(ours.inputs[key], want[key]), key
    t = int(want["video_grid_thw"][0, 0])
    assert t == len(videos) // 2 and ours.inputs["second_per_grid_ts"].tolist() == [1.0]   # 2 / fps 2.0


def test_one_frame_video_is_the_image_protocol(tiny_processor):
    from litelvlm.unipixel.protocol import prepare_inputs

    image = _video(1, 77, 190, seed=3)[0]
    for answer in ("generate", "teacher-forced"):
        a = V.prepare_video_inputs(tiny_processor, [image], "the dog", answer=answer)
        b = prepare_inputs(tiny_processor, image, "the dog", answer=answer)
        assert a.text == b.text and "in this image." in a.question
        for key in ("input_ids", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
            assert torch.equal(a.inputs[key], b.inputs[key])


# -- 2. the pipeline ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipe():
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline
    from tests.unipixel_tiny import tiny_unipixel

    p = UniPixelVideoPipeline.of(tiny_unipixel())   # the shared tiny model; SAM 2 copied below
    p.sam2 = copy.deepcopy(p.sam2)   # the nudge below stays in this module's copy
    # a video model another test built holds the weights before the nudge
    p.sam2.__dict__.pop("_video_model", None)
    with torch.no_grad():   # an object present, so masks are not the -1024 of an absent object
        p.sam2.model.mask_decoder.pred_obj_score_head.proj_out.bias += 5.0
    return p


@pytest.fixture(scope="module")
def video():
    return _video(5, 61, 89, seed=7)


@pytest.fixture(scope="module")
def prep(pipe, video):
    return pipe.with_sentences(pipe.prepare_video(video), ["The red circle moving left."])


def official_chain(pipe, frames, query):
    """UniPixel's forward on the official sample (plus this project's teacher-forced answer): the norm input
    at the seg row, the seg tokens, and SAM 2's frame-0 logits (the hidden-state prompt added on frame 0)."""
    from litelvlm.unipixel.protocol import teacher_forced_answer

    _, _, text, videos, _ = official_sample_text_and_frames(pipe.processor, frames, query)
    inputs = pipe.processor(text=[text + teacher_forced_answer()], videos=[videos], do_resize=False,
                            return_tensors="pt")
    inputs["second_per_grid_ts"] = torch.tensor([1.0])
    state = {}

    def cache_state_hook(module, inputs, outputs=None):  # qwen2_5_vl.py L21-22
        state["state"] = inputs[0] if isinstance(inputs, tuple) else inputs

    handle = pipe.qwen.model.language_model.norm.register_forward_pre_hook(cache_state_hook)  # L52
    try:
        with torch.no_grad():
            pipe.qwen(**dict(inputs.items()), use_cache=False)
    finally:
        handle.remove()
    inds = torch.where(inputs["input_ids"][..., 1:][0] == pipe.seg_token_id)[0]   # L343-346
    seg_tokens = pipe.seg_head(state["state"])[0][inds]
    sam = pipe.sam2
    with torch.no_grad():
        first = sam.decode(sam.encode_image(sam.preprocess(frames[0])), seg_tokens,
                           (frames[0].height, frames[0].width))
    return state["state"][0, inds], seg_tokens, first.logits.float(), inputs


def test_unpruned_video_equals_unipixel_on_frame_0(pipe, video, prep):
    with torch.no_grad():
        out = pipe.ground(prep, "none")
    hidden, tokens, first, inputs = official_chain(pipe, video, "The red circle moving left.")
    assert torch.equal(prep.input_ids, inputs["input_ids"][0])
    assert torch.allclose(out.seg_hidden, hidden, atol=1e-5, rtol=1e-5)
    assert torch.allclose(out.prompt_embeddings, tokens, atol=1e-5, rtol=1e-5)
    assert out.masks.shape == out.mask_logits.shape == (5, 61, 89)
    assert torch.allclose(out.mask_logits[:1], first, atol=1e-4, rtol=1e-4) and out.masks[0].any()
    # the frame-wise fallback: every frame decodes the same prompt on its own features
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline

    flat = UniPixelVideoPipeline.of(pipe, "frame-wise")
    with torch.no_grad():
        out = flat.ground(prep, "none")
    sam = pipe.sam2
    for f in range(5):
        with torch.no_grad():
            got = sam.decode(sam.encode_image(sam.preprocess(video[f])), tokens, (61, 89)).logits.float()
        assert torch.allclose(out.mask_logits[f:f + 1], got, atol=1e-4, rtol=1e-4)


def test_video_positions_equal_unipixels_transformers(pipe, prep):
    """All N tokens of a 3-temporal-patch video: transformers 4.53's ``get_rope_index`` (temporal ids 0, 2,
    4)."""
    n = pipe.num_visual(prep)
    ours = pipe.layout(prep, n).position_ids.cpu()
    want, _ = official_rope_index(pipe.qwen.model, prep.input_ids[None], image_grid_thw=None,
                                  video_grid_thw=prep.grid_thw, second_per_grid_ts=prep.second_per_grid_ts)
    assert torch.equal(ours, want)
    t, h, w = (int(v) for v in prep.grid_thw[0])
    s = pipe.layout(prep, n).image_start
    assert (t, n) == (3, 3 * (h // 2) * (w // 2))
    per = (h // 2) * (w // 2)
    # tokens_per_second 2
    assert torch.equal(ours[0, 0, s:s + n] - s, torch.arange(t).repeat_interleave(per) * 2)


@pytest.mark.parametrize("method", ["fastv", *(pytest.param(m, marks=pytest.mark.slow)
                                              for m in ("ivc-prune", "visionzip", "sparsevlm", "litelvlm"))])
def test_methods_run_on_the_video_tokens(pipe, prep, method):
    n = pipe.num_visual(prep)
    for k in (1, n // 3):
        with torch.no_grad():
            out = pipe.ground(prep, method, k)
        assert out.masks.shape == (5, 61, 89) and out.budget == k


def test_refusals_and_the_image_case(pipe, prep):
    assert pipe.method_error("vscan") and type(pipe).method_error(type(pipe), "vscan")
    with pytest.raises(LiteLVLMError):
        pipe.ground(prep, "vscan", 10)
    assert pipe.method_error("fastv") is None and pipe.method_error("litelvlm") is None
    with pytest.raises(LiteLVLMError):
        pipe.with_sentences(pipe.prepare_video(_video(2, 40, 40)), ["a", "b"])
    from litelvlm.unipixel.pipeline import UniPixelPipeline

    image_path = copy.copy(pipe)
    image_path.__class__ = UniPixelPipeline
    image = _video(1, 97, 131, seed=1)[0]
    a, b = pipe.prepare(image, ["a cat"]), image_path.prepare(image, ["a cat"])
    assert torch.equal(a.visual, b.visual) and torch.equal(a.input_ids, b.input_ids)
    with torch.no_grad():
        got, want = pipe.ground(a, "fastv", 20), image_path.ground(b, "fastv", 20)
    # the same LLM run; SAM 2's video model on one frame:
    assert torch.equal(got.seg_hidden, want.seg_hidden)
    assert torch.allclose(got.mask_logits, want.mask_logits, atol=1e-4, rtol=1e-4)   # the image path's decode
