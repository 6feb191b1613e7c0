"""Mask geometry on the patch grid: exact coverage fractions, crop offsets checked against the real
transforms."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from PIL import Image

from litelvlm.clip.traces import Geometry
from litelvlm.data.geometry import patch_coverage, transform_params


def coordinate_image(h: int, w: int) -> Image.Image:
    """R = column index, G = row index, B = 0: every pixel encodes where it came from (h, w <= 255)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8))


def decoded_coordinates(clip, image: Image.Image, pad_to_square: bool = False) -> np.ndarray:
    """The (out_h, out_w, 2) original (x, y) that the backend's own transform put at each model-input
    pixel."""
    px = clip.preprocess([image], pad_to_square=pad_to_square)[0].float().numpy()
    mean, std = np.asarray(clip.image_mean)[:, None, None], np.asarray(clip.image_std)[:, None, None]
    rgb = (px * std + mean) * 255.0
    return np.stack([rgb[0], rgb[1]], -1)


def expected_coordinates(params, margin_from) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-centre original coordinates of every output pixel from ``params``, and an interior mask."""
    oh, ow = params.out
    yy, xx = params.to_original(np.arange(oh) + 0.5, np.arange(ow) + 0.5)
    ys, xs = yy - 0.5, xx - 0.5
    ok_y = (ys > margin_from[0]) & (ys < params.height - 1 - margin_from[0])
    ok_x = (xs > margin_from[1]) & (xs < params.width - 1 - margin_from[1])
    return xs, ys, ok_y[:, None] & ok_x[None, :]


# --------------------------------------------------------------------------------------------
# exact fractions on hand-made masks
# --------------------------------------------------------------------------------------------
def test_coverage_exact_fractions_with_non_integer_scale_and_crop():
    # 6x12 landscape, shortest side 6 -> 4: resized (4, 8), scale 1.5, crop 4 at left offset 2,
    # so the window is original columns [3, 9); a 2x2 grid has cells of 3x3 original pixels.
    g = Geometry(mode="shortest", resize=4, crop=(4, 4), crop_rounding="floor")
    mask = np.zeros((6, 12), bool)
    mask[0:2, 2:7] = True  # 2 rows x 5 columns = 10 pixels
    p = transform_params(g, 6, 12)
    assert p.resized == (4, 8) and p.offset == (0, 2)
    cov = patch_coverage(mask, g, (2, 2))
    np.testing.assert_allclose(cov.coverage, [[2 / 3, 2 / 9], [0.0, 0.0]], atol=1e-12)
    assert cov.crop_cut_share == pytest.approx(2 / 10)  # columns 2 (and nothing right of 9) are cut
    assert cov.mask_area_fraction == pytest.approx(10 / 72)
    np.testing.assert_array_equal(cov.inside(), [True, False, False, False])
    assert cov.exclusion_reason() is None


def test_crop_cut_share_portrait_and_pad():
    g = Geometry(mode="shortest", resize=8, crop=(8, 8))
    mask = np.zeros((16, 8), bool)
    mask[0:6, :] = True  # top 6 rows of a portrait image; the crop keeps rows [4, 12)
    cov = patch_coverage(mask, g, (2, 2))
    assert cov.params.offset == (4, 0)
    assert cov.crop_cut_share == pytest.approx(4 / 6)
    np.testing.assert_allclose(cov.coverage, [[0.5, 0.5], [0.0, 0.0]])
    # pad-to-square keeps the whole image: nothing is cut; the image sits at columns [4, 12) of 16
    padded = patch_coverage(mask, g, (2, 2), pad_to_square=True)
    assert padded.params.pad == (0, 4) and padded.params.frame == (16, 16)
    assert padded.crop_cut_share == 0.0
    # cell (0,0) covers padded columns [0, 8): image columns [0, 4), rows [0, 8) of which 6 are mask
    np.testing.assert_allclose(padded.coverage, [[6 * 4 / 64, 6 * 4 / 64], [0, 0]])


def test_exclusion_reasons():
    g = Geometry(mode="squash", resize=4, crop=(4, 4))
    assert patch_coverage(np.zeros((8, 8), bool), g, (2, 2)).exclusion_reason() == "empty_mask"
    assert patch_coverage(np.ones((8, 8), bool), g, (2, 2)).exclusion_reason() == "no_outside_patch"
    small = np.zeros((8, 8), bool)
    small[0, 0] = True
    assert patch_coverage(small, g, (2, 2)).exclusion_reason() == "no_inside_patch"
    # the threshold is the c_i >= 0.5, inclusive
    half = np.zeros((8, 8), bool)
    half[0:2, 0:4] = True
    assert patch_coverage(half, g, (2, 2)).coverage[0, 0] == 0.5
    assert patch_coverage(half, g, (2, 2)).exclusion_reason() is None


@pytest.mark.parametrize("mode,rounding,pad", [("shortest", "floor", False), ("shortest", "round", False),
                                               ("shortest", "floor", True), ("longest", "round", False),
                                               ("squash", "floor", False)])
@pytest.mark.parametrize("hw", [(37, 23), (23, 41)])
def test_coverage_matches_supersampled_mask(mode, rounding, pad, hw):
    """Independent check: map a fine sampling of every cell back to the image and look the mask up."""
    rng = np.random.default_rng(zlib.crc32(repr((mode, rounding, pad, hw)).encode()))
    mask = rng.random(hw) < 0.4
    g = Geometry(mode=mode, resize=14, crop=(14, 14), crop_rounding=rounding)
    cov = patch_coverage(mask, g, (2, 2), pad_to_square=pad)
    p = cov.params
    s = 140  # samples per output axis (10 per output pixel)
    oy, ox = (np.arange(s) + 0.5) * p.out[0] / s, (np.arange(s) + 0.5) * p.out[1] / s
    yy, xx = p.to_original(oy, ox)
    iy, ix = np.floor(yy).astype(int), np.floor(xx).astype(int)
    valid = ((iy >= 0) & (iy < hw[0]))[:, None] & ((ix >= 0) & (ix < hw[1]))[None, :]
    vals = np.where(valid, mask[np.clip(iy, 0, hw[0] - 1)][:, np.clip(ix, 0, hw[1] - 1)], False)
    brute = vals.reshape(2, s // 2, 2, s // 2).mean((1, 3))
    np.testing.assert_allclose(cov.coverage, brute, atol=0.03)


# --------------------------------------------------------------------------------------------
# crop offsets against what the libraries actually do to an image
# --------------------------------------------------------------------------------------------
# 204 x 120: the short side 120 -> 56 makes the long side int(56 * 204 / 120) = 95, so the crop
# offset (95 - 56) / 2 = 19.5 is floored to 19 by transformers and rounded to 20 by torchvision.
SHAPES = {"portrait": (204, 120), "landscape": (120, 204)}


def _check_against_transform(clip, hw, pad_to_square=False, expect_offset=None):
    img = coordinate_image(*hw)
    got = decoded_coordinates(clip, img, pad_to_square)
    params = transform_params(clip.geometry, hw[0], hw[1], pad_to_square)
    if expect_offset is not None:
        assert params.offset == expect_offset
    xs, ys, ok = expected_coordinates(params, (4, 4))
    assert ok.sum() > 100
    err_x = np.abs(got[..., 0] - xs[None, :])[ok]
    err_y = np.abs(got[..., 1] - ys[:, None])[ok]
    assert err_x.max() < 0.75 and err_y.max() < 0.75, (err_x.max(), err_y.max())
    return params, got, ok


@pytest.mark.parametrize("shape", ["portrait", "landscape"])
def test_hf_clip_image_processor_offsets(tiny_hf_clip, shape):
    from transformers import CLIPImageProcessor

    try:
        from transformers import CLIPImageProcessorFast
        kinds = (CLIPImageProcessor, CLIPImageProcessorFast)
    except ImportError:
        kinds = (CLIPImageProcessor,)
    assert isinstance(tiny_hf_clip.processor, kinds)
    hw = SHAPES[shape]
    long_off = (19, 0) if shape == "portrait" else (0, 19)
    params, got, ok = _check_against_transform(tiny_hf_clip, hw, expect_offset=long_off)
    # the test discriminates: torchvision's rounding (offset 20) would be off by a resized pixel
    wrong = transform_params(Geometry("shortest", 56, (56, 56), "round"), *hw)
    xs, ys, _ = expected_coordinates(wrong, (4, 4))
    err = np.abs(got[..., 0] - xs[None, :])[ok].max() + np.abs(got[..., 1] - ys[:, None])[ok].max()
    assert err > 1.5


def test_hf_pad_to_square(tiny_hf_clip):
    params, _, _ = _check_against_transform(tiny_hf_clip, SHAPES["landscape"], pad_to_square=True)
    assert params.pad == (42, 0) and params.frame == (204, 204) and params.offset == (0, 0)


@pytest.mark.parametrize("shape", ["portrait", "landscape"])
def test_open_clip_transform_offsets(tiny_open_clip, shape):
    assert tiny_open_clip.geometry.crop_rounding == "round"
    hw = SHAPES[shape]
    _check_against_transform(tiny_open_clip, hw, expect_offset=(20, 0) if shape == "portrait" else (0, 20))


def test_coverage_agrees_with_transformed_mask(tiny_hf_clip):
    """A mask image pushed through the real processor, averaged per patch, matches patch_coverage."""
    hw = SHAPES["portrait"]
    mask = np.zeros(hw, bool)
    mask[30:150, 10:90] = True
    cov = patch_coverage(mask, tiny_hf_clip.geometry, tiny_hf_clip.grid)
    px = tiny_hf_clip.preprocess([Image.fromarray((mask * 255).astype(np.uint8)).convert("RGB")])[0]
    m = (px[0].float().numpy() * tiny_hf_clip.image_std[0] + tiny_hf_clip.image_mean[0])
    gh, gw = tiny_hf_clip.grid
    per_patch = m.reshape(gh, 56 // gh, gw, 56 // gw).mean((1, 3))
    np.testing.assert_allclose(cov.coverage, per_patch, atol=0.06)
