"""VideoGLaMM's CLIP pixels are the slow ``CLIPImageProcessor``'s, the class its official code names
(mbzuai-oryx/VideoGLaMM @6b15b1e ``VideoGLaMM/utils/enc_preprocessors.py`` L28-30:
``CLIPImageProcessor.from_pretrained("openai/clip-vit-large-patch14-336")``, an explicit class, so no fast
processor under its pin, transformers 4.41.0 in ``README.md`` L76): PIL's bicubic shortest-edge resize, a
floor-offset centre crop, rescale and normalise. The official side is the transcription of that processor in
``tests/litelvlm/test_clip_preprocess_official.py`` (numpy and PIL, no transformers), checked there against
the real processor's outputs; the processor's steps are the same in 4.41.0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.litelvlm.test_clip_preprocess_official import _official_clip_preprocess


@pytest.mark.parametrize("hw", [(480, 640), (517, 333), (37, 500), (336, 336)])
def test_clip_pixels_equal_the_slow_clip_image_processor(hw):
    from litelvlm.videoglamm.prompt import clip_pixels

    rng = np.random.default_rng(hw[0] * 7 + hw[1])
    frames = [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(2)]
    got = clip_pixels(frames)
    want = torch.from_numpy(np.stack([_official_clip_preprocess(f) for f in frames]))
    assert got.shape == want.shape == (2, 3, 336, 336)
    assert torch.equal(got, want)


def test_clip_pixels_equal_transformers_4_41s_own_processor():
    """The same under VideoGLaMM's pin itself: transformers 4.41.0's ``CLIPImageProcessor`` (the released
    ``preprocessor_config.json`` values), run in a second environment (``tests/pinned_env.py``) on odd frames,
    gives our pixels bit for bit; on a frame one pixel tall it fails (it takes that axis for the channels),
    where ours makes the pixels (docs/fidelity.md, remaining differences)."""
    from litelvlm.videoglamm.prompt import clip_pixels
    from tests.litelvlm.videoglamm.official_pin import official_side

    # the frames of ``official_pin.CLIP_SIZES``, run once a process with the Phi-3 cases
    # (tests/litelvlm/videoglamm/official_pin.py)
    cases, got = official_side().clip
    assert got["versions"]["transformers"] == "4.41.0" and "pinned" in got["versions"]["transformers_path"]
    *equal, (tall, refused) = zip(cases, got["cases"], strict=True)
    for frames, official in equal:
        assert torch.equal(clip_pixels(frames), official), frames[0].shape
    assert refused == "ValueError: mean must have 1 elements if it is an iterable, got 3"
    assert clip_pixels(tall).shape == (2, 3, 336, 336)
