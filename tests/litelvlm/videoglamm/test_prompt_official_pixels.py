"""VideoGLaMM's InternVideo2 pixels (``litelvlm.videoglamm.prompt.internvideo_pixels``) against the official
code itself.

mbzuai-oryx/VideoGLaMM @6b15b1e, ``VideoGLaMM/model/videogpt_plus/model/internvideo/utils.py``: ``v_mean``,
``v_std`` and ``normalize`` (L16-21) and the class ``VideoTrainProcessor`` (L105-143), read from
``../shared/official/VideoGLaMM`` and run as they are (the module's other imports, the InternVideo2 model, are
not needed by them), on the PIL frames ``chat.py`` ``preprocess_vision`` hands it (L431) and cast to float32
as L434 does. OpenCV's ``cv2.resize`` is the same library call on both sides, so the pixels are equal by
construction: this test checks that nothing else differs.
"""

from __future__ import annotations

import ast

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.models.channel_stats import IMAGENET_MEAN, IMAGENET_STD
from litelvlm.videoglamm.prompt import internvideo_pixels

UTILS = "VideoGLaMM/model/videogpt_plus/model/internvideo/utils.py"
SIZES = [(45, 70), (224, 224), (1, 1), (3, 500), (481, 640), (720, 1280)]


def _frames(seed: int = 0, n: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*SIZES[i % len(SIZES)], 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def official_processor(official):
    """The official ``VideoTrainProcessor``, its module's ``normalize`` included, executed from the stored
    source."""
    tree = ast.parse((official.tree("VideoGLaMM") / UTILS).read_text())
    wanted = [node for node in tree.body
              if (isinstance(node, ast.Assign) and {t.id for t in node.targets} & {"v_mean", "v_std"})
              or (isinstance(node, (ast.FunctionDef, ast.ClassDef))
                  and node.name in ("normalize", "VideoTrainProcessor"))]
    assert [getattr(n, "name", None) or n.targets[0].id for n in wanted] == \
        ["v_mean", "v_std", "normalize", "VideoTrainProcessor"]
    assert [n.lineno for n in wanted] == [16, 17, 20, 105]
    namespace = {"np": np, "cv2": cv2, "torch": torch}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), UTILS, "exec"), namespace)
    return namespace["VideoTrainProcessor"]


def test_internvideo_pixels_equal_the_official_processor(official_processor):
    for seed in range(3):
        frames = _frames(seed)
        official = official_processor(num_frames=16).preprocess([Image.fromarray(f) for f in frames])[
            "pixel_values"]
        # chat.py L433-434 (float32; the bf16 cast is the model's)
        want = torch.stack(official, dim=0).float()
        got = internvideo_pixels(frames)
        assert got.shape == (16, 3, 224, 224) and got.dtype == torch.float32
        assert torch.equal(got, want)


def test_internvideo_pixels_resize_with_opencv():
    """The resize is OpenCV's own bilinear (uint8, fixed point), not a float bilinear rounded afterwards."""
    frames = _frames(7, 4)
    mean, std = np.array(IMAGENET_MEAN).reshape(1, 1, 3), np.array(IMAGENET_STD).reshape(1, 1, 3)
    got = internvideo_pixels(frames).double().numpy().transpose(0, 2, 3, 1) * std + mean
    resized = np.stack([cv2.resize(f, (224, 224)) for f in frames]) / 255.0
    assert np.abs(got - resized).max() < 1e-6
    # a float bilinear (torch's, half-pixel, no antialias) rounded to uint8 differs by one grey level in
    # places
    x = torch.from_numpy(frames[0].astype(np.float64)).permute(2, 0, 1)[None]
    floated = torch.nn.functional.interpolate(x, (224, 224), mode="bilinear", align_corners=False)[0]
    diff = np.abs(floated.permute(1, 2, 0).round().numpy() - cv2.resize(frames[0], (224, 224)))
    assert diff.max() == 1
