"""Pruning Sa2VA's video (this project's adaptation, ``litelvlm.sa2va.video.joined``): the first min(5, T)
frames' blocks of the official prompt joined into one (the separators between them dropped, every other row
keeping its official M-RoPE id), the method keeping K of the N merged tokens over the whole video, as
UniPixel's video path chooses over its one video block; the unpruned run stays the official prompt. Tiny
random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.registry.families import load_pipeline

    return load_pipeline("sa2va-tiny-random:0")


@pytest.fixture(scope="module")
def video(pipe):
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)) for _ in range(6)]
    return pipe.with_sentences(pipe.prepare_video(frames), ["the bird"])


def test_the_joined_prompt_drops_the_separators_and_keeps_the_official_ids(pipe, video):
    from litelvlm.sa2va.video import joined

    j = joined(pipe, video)
    n, frames = pipe.num_visual(video), video.video.llm_frames
    assert frames == 5 and len(j.input_ids) == len(video.input_ids) - 2 * (frames - 1)
    visual = torch.nonzero(j.mm_token_type_ids > 0).flatten()
    assert len(visual) == n and int(visual[-1] - visual[0]) == n - 1            # one block of the N tokens
    official = pipe.layout(video, n)
    keep = torch.tensor([i for i in range(len(video.input_ids)) if video.mm_token_type_ids[i] > 0
                         or i < int(visual[0]) or i > int(visual[0]) + n + 2 * (frames - 1) - 1])
    assert torch.equal(j.input_ids, video.input_ids[keep])
    assert torch.equal(pipe.layout(j, n).position_ids.cpu(), official.position_ids.cpu()[..., keep])
    assert j.prompt_len == video.prompt_len - 2 * (frames - 1) and joined(pipe, j) is j


def test_a_pruned_video_is_the_joined_prompt_with_the_kept_tokens(pipe, video):
    """``ground`` on a video with a method: the kept merged tokens at the LLM input of the joined prompt, at
    their official ids (the family's ``keep`` rule), the final state of the [SEG] row, SAM 2's memory over
    every frame."""
    from litelvlm.sa2va.video import joined

    with torch.no_grad():
        out = pipe.ground(video, "divprune", 12)
        j = joined(pipe, video)
        kept = out.selection.indices
        final = pipe.final_hidden(pipe.sequence_embeds(j, pipe.visual_tokens(j)[kept]),
                                  pipe.kept_positions(j, kept))
        start = int(torch.nonzero(j.mm_token_type_ids).min())
        # K pads in the block
        ids = torch.cat([j.input_ids[:start + 12], j.input_ids[start + pipe.num_visual(j):]])
        # its input is [SEG]
        seg = final[0, ids == pipe.seg_token_id]
        logits = pipe.upscale_masks(j, pipe.decode_masks(j, pipe.seg_prompts(seg)))
    assert out.masks.shape == (1, 6, 40, 64) and len(kept) == 12
    assert torch.equal(out.mask_logits, logits)


@pytest.mark.parametrize("method", ["divprune", pytest.param("fastv", marks=pytest.mark.slow)])
def test_k_equal_to_n_on_a_video_changes_nothing(pipe, video, method):
    """At K = N nothing is pruned, so the video is not joined either: the official prompt (its frames'
    separators included) and the unpruned run's masks and [SEG] state, exactly."""
    n = pipe.num_visual(video)
    with torch.no_grad():
        base, full = pipe.ground(video, "none", n), pipe.ground(video, method, n)
    assert torch.equal(full.masks, base.masks) and torch.equal(full.kept_indices.cpu(), torch.arange(n))
    assert torch.equal(full.seg_hidden, base.seg_hidden) and full.seq_len == base.seq_len == len(
        video.input_ids)


@pytest.mark.slow
def test_an_in_llm_method_and_the_clip_side_run_on_the_joined_block(pipe, video):
    for method in ("fastv", "litelvlm"):
        with torch.no_grad():
            out = pipe.ground(video, method, 9)
        assert out.masks.shape == (1, 6, 40, 64) and len(out.kept_indices) == 9


def test_what_is_refused_says_why(pipe, video):
    with pytest.raises(LiteLVLMError, match="reads Qwen2.5-VL's vision tower over one image's grid"):
        pipe.ground(video, "tome", 9)
    with pytest.raises(LiteLVLMError, match="a video's official prompt runs at all N"):
        pipe.layout(video, 9)
    assert "this project's adaptation" in pipe.describe()["video_pruning"]
