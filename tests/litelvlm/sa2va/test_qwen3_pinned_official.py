"""Sa2VA-Qwen3-VL against its official code run under the official pins, in a second environment
(``tests/pinned_env.py``: transformers 4.57.0, qwen-vl-utils 0.0.14; bytedance/Sa2VA @9832e1a
``pyproject.toml`` extra ``latest``). The official side (``tests/pinned_scripts/sa2va_qwen3_official.py``)
reads the written random folder with the official ``Sa2VAChatConfigQwen`` and 4.57's processor and
``Qwen3VLForConditionalGeneration``, runs ``predict_forward``'s image statements (qwen-vl-utils'
``process_vision_info`` included) on odd images and hands back the ids, the pixels and the ``[SEG]`` state
through a file. Here: the folder's config loads under the pin (its rope settings read as 4.57 reads them);
the prompt ids, grid and pixels are ours bit for bit; the ``[SEG]`` state the official code reads under its
pin (the last decoder layer's output before the final norm) is our default's, and ``seg_state="normed"``
(this project's option) is the one that differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests import sa2va_official as off
from tests.pinned_env import run_pinned

pytestmark = pytest.mark.skipif(not off.available("qwen3-vl"),
                                reason="the official Sa2VA code (../shared/official/Sa2VA) is absent")

SIZES = [(91, 137), (333, 41), (7, 300)]
SENTENCE = "the dog on the left"


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype("uint8")


@pytest.fixture(scope="module")
def pinned(qwen3_tiny, tmp_path_factory):
    """The official side's results on :data:`SIZES` under the pins."""
    from litelvlm.sa2va.protocol import ANSWERS_LIST, image_question

    pipe, tmp = qwen3_tiny.pipe, tmp_path_factory.mktemp("pinned")
    cases = [{"image": _image(*s, seed=k), "text": image_question(SENTENCE)} for k, s in enumerate(SIZES)]
    torch.save(cases, tmp / "cases.pt")
    run_pinned("sa2va", "sa2va_qwen3_official.py", str(off.CODE.parent / off.FOLDERS["qwen3-vl"]),
               str(qwen3_tiny.folder), str(tmp / "cases.pt"), str(tmp / "out.pt"), str(pipe.min_pixels),
               str(pipe.max_pixels), ANSWERS_LIST[0])
    return cases, torch.load(tmp / "out.pt", weights_only=False)


def test_the_official_side_ran_under_the_pin_and_read_the_folders_config(pinned):
    _, got = pinned
    assert got["versions"]["transformers"] == "4.57.0"
    assert "pinned" in got["versions"]["transformers_path"]
    assert got["rope_scaling"] is not None and "mrope_section" in got["rope_scaling"]


def test_ids_grid_and_pixels_are_the_official_ones(qwen3_tiny, pinned):
    pipe = qwen3_tiny.pipe
    for case, official in zip(pinned[0], pinned[1]["cases"], strict=True):
        image = Image.fromarray(case["image"])
        prep = pipe.prepare(image, [SENTENCE])
        _, tower = pipe.pixels(image).tower  # (the LLM images, the processor output)
        assert torch.equal(prep.input_ids, official["input_ids"])
        assert torch.equal(prep.grid_thw, official["image_grid_thw"])
        assert torch.equal(tower["pixel_values"], official["pixel_values"]), image.size


def test_the_seg_state_is_the_one_the_official_code_reads_under_its_pin(qwen3_tiny, pinned):
    from litelvlm.registry.families import load_pipeline

    pipe = qwen3_tiny.pipe
    normed = load_pipeline(str(qwen3_tiny.folder), seg_state="normed")
    for case, official in zip(pinned[0], pinned[1]["cases"], strict=True):
        image = Image.fromarray(case["image"])
        mine = pipe.ground(pipe.prepare(image, [SENTENCE]), "none", None).seg_hidden
        theirs = normed.ground(normed.prepare(image, [SENTENCE]), "none", None).seg_hidden
        torch.testing.assert_close(mine, official["seg_state"], atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(theirs, official["normed_seg_state"], atol=2e-5, rtol=1e-5)
        assert (mine - theirs).abs().max() > 0.1   # the option is a different state
