"""Sa2VA on its Qwen backbones against the official code run under the official pins, in a second
environment (``tests/pinned_env.py``: transformers 4.57.0, qwen-vl-utils 0.0.14; bytedance/Sa2VA @9832e1a
``pyproject.toml`` extra ``latest``). The official side (``tests/pinned_scripts/sa2va_qwen_official.py``)
reads the written random folder with the official ``Sa2VAChatConfigQwen`` of the backbone's folder
(``models_qwen3vl/``, ``models_qwen2_5_vl/``) and 4.57's processor and model class, runs ``predict_forward``'s
image statements (qwen-vl-utils' ``process_vision_info`` included) on odd images and hands back the ids, the
pixels and the ``[SEG]`` state through a file. Here: the folder's config loads under the pin (its rope
settings read as 4.57 reads them); the prompt ids, grid and pixels are ours bit for bit; the ``[SEG]`` state
the official code reads under its pin is our default's: on Qwen3-VL the last decoder layer's output before the
final norm (4.57's ``@check_model_inputs`` on the outer forward), where ``seg_state="normed"`` (this project's
option) is the one that differs; on Qwen2.5-VL the final normed state (4.57 appends it after the norm)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from litelvlm.registry.families import load_pipeline
from litelvlm.sa2va.config import get_preset
from tests.litelvlm.sa2va.official_pin import BACKBONES, SENTENCE, official_side


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def pinned(request):
    """(backbone, folder, pipeline, the cases, the official side's results under the pins): the images of
    ``official_pin.SIZES`` and a video of seven odd frames, the official side run once a process for every
    backbone and Sa2VA-InternVL3's LLM (``tests/litelvlm/sa2va/official_pin.py``)."""
    backbone = request.param
    if backbone not in official_side().qwen:
        pytest.skip("the official Sa2VA code (../shared/official/Sa2VA) is absent")
    folder, cases, got = official_side().qwen[backbone]
    pipe, p = load_pipeline(str(folder)), get_preset(BACKBONES[backbone])
    # the bounds the official side was given are the pipeline's
    assert (pipe.min_pixels, pipe.max_pixels) == (p.min_pixels, p.max_pixels)
    return backbone, folder, pipe, cases, got


def test_the_official_side_ran_under_the_pin_and_read_the_folders_config(pinned):
    backbone, *_, got = pinned
    assert got["versions"]["transformers"] == "4.57.0"
    assert "pinned" in got["versions"]["transformers_path"]
    assert got["model"] == {"qwen3-vl": "Qwen3VLForConditionalGeneration",
                            "qwen2.5-vl": "Qwen2_5_VLForConditionalGeneration"}[backbone]
    assert got["rope_scaling"] is not None and "mrope_section" in got["rope_scaling"]


def test_ids_grid_and_pixels_are_the_official_ones(pinned):
    _, _, pipe, cases, got = pinned
    for case, official in zip(cases[:-1], got["cases"][:-1], strict=True):
        image = Image.fromarray(case["image"])
        prep = pipe.prepare(image, [SENTENCE])
        _, tower = pipe.pixels(image).tower  # (the LLM images, the processor output)
        assert torch.equal(prep.input_ids, official["input_ids"])
        assert torch.equal(prep.grid_thw, official["image_grid_thw"])
        assert torch.equal(tower["pixel_values"], official["pixel_values"]), image.size


def test_the_seg_state_is_the_one_the_official_code_reads_under_its_pin(pinned):
    backbone, folder, pipe, cases, got = pinned
    normed = load_pipeline(str(folder), seg_state="normed") if backbone == "qwen3-vl" else None
    for case, official in zip(cases[:-1], got["cases"][:-1], strict=True):
        image = Image.fromarray(case["image"])
        mine = pipe.ground(pipe.prepare(image, [SENTENCE]), "none", None).seg_hidden
        torch.testing.assert_close(mine, official["seg_state"], atol=2e-5, rtol=1e-5)
        # which state 4.57 puts last: Qwen3-VL the last layer's output, Qwen2.5-VL its final norm
        which = "before_norm" if backbone == "qwen3-vl" else "after_norm"
        other = "after_norm" if backbone == "qwen3-vl" else "before_norm"
        assert torch.equal(official["seg_state"], official[which])
        assert (official["seg_state"] - official[other]).abs().max() > 0.1
        if normed is not None:
            theirs = normed.ground(normed.prepare(image, [SENTENCE]), "none", None).seg_hidden
            torch.testing.assert_close(theirs, official["after_norm"], atol=2e-5, rtol=1e-5)


def test_a_videos_prompt_and_seg_state_are_the_official_ones(pinned):
    """``predict_forward``'s video path: the first five of seven frames, each an image, the Ref-VOS question:
    the prompt ids and grid equal bit for bit, the ``[SEG]`` state within float32 rounding."""
    _, _, pipe, cases, got = pinned
    frames, official = [Image.fromarray(f) for f in cases[-1]["frames"]], got["cases"][-1]
    prep = pipe.with_sentences(pipe.prepare_video(frames), [SENTENCE])
    assert len(official["image_grid_thw"]) == 5
    assert torch.equal(prep.input_ids, official["input_ids"])
    assert torch.equal(prep.grid_thw, official["image_grid_thw"])
    mine = pipe.ground(prep, "none", None).seg_hidden
    torch.testing.assert_close(mine, official["seg_state"], atol=2e-5, rtol=1e-5)
