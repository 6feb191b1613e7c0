"""The CLIP-side methods that read scores alone on UniPixel's video tokens (litelvlm.unipixel.video_mapped,
this project's adaptation): each LLM frame's paired-CLIP scores mapped onto its temporal patch's merged grid,
averaged over the patch's frames; LiteLVLM's official rule over the video's N tokens.

What is official and transcribed: LiteLVLM's scores and selection rule (``tests/official_litelvlm.py``,
sejong-rcv/LiteLVLM @5896153 ``clip_encoder.py`` L78-113, L158-168), run here on each frame with the paired
CLIP's towers, then mapped and averaged as the adaptation defines.
"""

from __future__ import annotations

import pytest
import torch

from tests.fixtures.images import noise_video as _video
from tests.official_litelvlm import official_retain, official_scores  # noqa: E402


@pytest.fixture(scope="module")
def pipe():
    from litelvlm.unipixel.video_pipeline import UniPixelVideoPipeline
    from tests.unipixel_tiny import tiny_unipixel

    return UniPixelVideoPipeline.of(tiny_unipixel(), "frame-wise")   # the shared tiny model (a shallow copy)


@pytest.fixture(scope="module")
def towers(official_clip_towers):
    return official_clip_towers


@pytest.mark.parametrize("every", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_budgets_equal_the_official_rule_on_the_video_scores(pipe, towers, every):
    from litelvlm.methods.select import select
    from litelvlm.unipixel.video import video_question

    frames, sentence = _video(3, 61, 89, seed=4), "The red circle moving left."
    prep = pipe.with_sentences(pipe.prepare_video(frames), [sentence])
    mapped = prep.selector_inputs()
    question = video_question(sentence, 3)
    assert mapped.text.texts == [question] and mapped.per_patch == 2
    vision, text, tok = towers
    w = mapped.weights
    attn, sims = [], []
    with torch.no_grad():
        for f in frames + [frames[-1]]:   # the LLM's 3 frames padded with the last: 2 temporal patches
            a, s = official_scores(vision, text, tok, pipe.clip.preprocess([f], pad_to_square=True),
                                   [question])
            attn.append(a.double() @ w.T)
            sims.append(s.double() @ w.T)
    attn = torch.cat([(attn[0] + attn[1]) / 2, (attn[2] + attn[3]) / 2], dim=-1)
    sims = torch.cat([(sims[0] + sims[1]) / 2, (sims[2] + sims[3]) / 2], dim=-1)
    n = pipe.num_visual(prep)
    assert n == mapped.num_patches == attn.shape[-1] == 2 * w.shape[0]
    for budget in range(1, n + 1) if every else (1, 2, n // 7, n // 3, n // 2, n - 1, n):
        ours = select("litelvlm", mapped, budget).indices
        assert ours.tolist() == official_retain(attn, sims, budget).tolist(), f"K={budget}"


def test_one_frame_video_is_the_image_path(pipe):
    import copy

    from litelvlm.methods.select import select
    from litelvlm.unipixel.pipeline import UniPixelPipeline

    image_path = copy.copy(pipe)
    image_path.__class__ = UniPixelPipeline
    image = _video(1, 97, 131, seed=2)[0]
    a = pipe.with_sentences(pipe.prepare_video([image]), ["a dog"]).selector_inputs()
    b = image_path.prepare(image, ["a dog"]).selector_inputs()
    assert torch.equal(a.similarity(), b.similarity()) and torch.equal(a.context(), b.context())
    for budget in (1, 17, 60, a.num_patches):
        for method in ("litelvlm", "litelvlm-ctx", "clip_topsim", "random"):
            assert torch.equal(select(method, a, budget).indices, select(method, b, budget).indices)


@pytest.mark.slow
def test_score_methods_run_through_ground_and_vit_context_is_refused(pipe):
    import copy

    from litelvlm.errors import LiteLVLMError

    prep = pipe.with_sentences(pipe.prepare_video(_video(4, 50, 70, seed=1)), ["the cat"])
    n = pipe.num_visual(prep)
    for method in ("litelvlm", "random"):
        assert pipe.method_error(method) is None
        with torch.no_grad():
            out = pipe.ground(prep, method, n // 4)
        assert out.masks.shape == (4, 50, 70) and len(out.kept_indices) == n // 4
        assert int(out.kept_indices.max()) >= n // 2   # tokens of the second temporal patch are candidates
    vit = copy.copy(pipe)
    vit.context_source = "vit"
    with pytest.raises(LiteLVLMError, match="vit"):
        vit.ground(vit.with_sentences(prep, ["the cat"]), "litelvlm", 10)
