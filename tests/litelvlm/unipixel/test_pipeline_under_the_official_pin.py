"""UniPixel against its official inputs and LLM run under the official pin, in a second environment
(``tests/pinned_env.py``: transformers 4.53.3; PolyU-ChenLab/UniPixel @5c8e941 ``requirements.txt``). The
official side (``tests/pinned_scripts/unipixel_official.py``) loads the written random folder into 4.53.3's
processor (``use_fast=True, do_resize=False``) and ``Qwen2_5_VLForConditionalGeneration`` (the class
UniPixel's model subclasses), builds the prompt of the official frames (made here by the official
``fetch_video`` transcription) and returns the ids, the pixels, the grid and the final norm's input
(``cache_state_hook``). Here: every one equals ours, bit for bit or within float32 rounding, on odd images,
and the ``[SEG]`` state ``ground`` reads is the official one at the official rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from litelvlm.unipixel.protocol import question, teacher_forced_answer
from tests.fixtures.images import noise_image
from tests.litelvlm.unipixel.test_protocol import (
    official_fetch_video_list,
    official_messages,
    official_question,
    official_seg_rows,
)
from tests.pinned_env import run_pinned

SIZES = [(97, 131), (333, 41), (7, 300)]
SENTENCE = "The dog on the left."


@pytest.fixture(scope="module")
def pinned(tiny_unipixel_pipe, tmp_path_factory):
    """The cases (images) and the official side's results under the pin."""
    from litelvlm.unipixel.checkpoint import random_unipixel_dir

    tmp = tmp_path_factory.mktemp("pinned")
    images, cases = [noise_image(*s, seed=k) for k, s in enumerate(SIZES)], []
    for image in images:
        video = official_messages([image], official_question(SENTENCE))[0]["content"][0]
        frames, fps = official_fetch_video_list(video)
        cases.append({"frames": [np.asarray(f) for f in frames], "question": official_question(SENTENCE),
                      "pixels": {k: video[k] for k in ("min_pixels", "max_pixels")}, "fps": fps,
                      "answer": teacher_forced_answer(0)})
    torch.save(cases, tmp / "cases.pt")
    run_pinned("unipixel", "unipixel_official.py", str(random_unipixel_dir("tiny", 0)), str(tmp / "cases.pt"),
               str(tmp / "out.pt"))
    return images, torch.load(tmp / "out.pt", weights_only=False)


def test_the_official_side_ran_under_the_pin_with_every_tensor_of_the_llm(pinned):
    _, got = pinned
    assert got["versions"]["transformers"] == "4.53.3" and "pinned" in got["versions"]["transformers_path"]
    assert got["missing_keys"] == []


def test_ids_pixels_grid_and_the_seg_state_are_the_official_ones(tiny_unipixel_pipe, pinned):
    pipe = tiny_unipixel_pipe
    assert question(SENTENCE) == official_question(SENTENCE)
    for image, official in zip(*pinned[:1], pinned[1]["cases"], strict=True):
        prep = pipe.with_sentences(pipe.prepare_image(image), [SENTENCE], answer="teacher-forced")
        tower = pipe.pixels(image).tower
        assert torch.equal(prep.input_ids, official["input_ids"]), image.size
        assert torch.equal(prep.grid_thw, official["video_grid_thw"])
        assert torch.equal(tower["pixel_values_videos"], official["pixel_values_videos"])
        assert torch.equal(prep.second_per_grid_ts, official["second_per_grid_ts"])
        rows = official_seg_rows(official["input_ids"], pipe.seg_token_id)
        assert len(rows) == 1
        state = pipe.ground(prep, "none", None).seg_hidden
        torch.testing.assert_close(state, official["norm_input"][rows], atol=1e-7, rtol=1e-5)  # |state| ~0.05
