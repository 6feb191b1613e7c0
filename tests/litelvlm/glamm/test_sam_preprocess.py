"""SAM preprocessing / mask post-processing equal to GLaMM's official code, and measured against
transformers' ``SamImageProcessor`` (the processor ``GlammPipeline`` used before)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from litelvlm.glamm.sam_preprocess import postprocess_masks, preprocess_shape, sam_inputs

OFFICIAL = "sejong-rcv/LiteLVLM @ 5896153d8aa8ed4a2f862f4a27826140b2502a48"

#: Measured on all 128 images of ../shared/data/coco128_refer (transformers 5.23, torchvision 0.29.1):
#: SamImageProcessor (torchvision backend: antialiased bilinear on the uint8 tensor) differs from the
#: official PIL resize by at most one uint8 level in a few pixels (<= 0.11% of values per image), i.e.
#: |pixel_values| difference <= 1 / 57.12 = 0.017507 (G channel, the smallest std); elsewhere only float
#: rounding of its 0-1 rescale + ImageNet normalisation (~2.4e-7). Bound: a quarter level of margin.
PIXEL_BOUND = 1.25 / 57.12
#: Post-processed masks: measured 0.0 (the same two interpolations); bound leaves float-rounding margin.
MASK_BOUND = 1e-6


# -- the official code, transcribed statement by statement ------------------------------------------
def official_get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
    """``ResizeLongestSide.get_preprocess_shape``: OFFICIAL, ``model/SAM/utils/transforms.py`` lines
    102-113."""
    scale = long_side_length * 1.0 / max(oldh, oldw)
    newh, neww = oldh * scale, oldw * scale
    neww = int(neww + 0.5)
    newh = int(newh + 0.5)
    return (newh, neww)


def official_apply_image(image: np.ndarray, target_length: int = 1024) -> np.ndarray:
    """``ResizeLongestSide.apply_image``: OFFICIAL, ``model/SAM/utils/transforms.py`` lines 27-34 (imports
    lines 13-14: torchvision's ``resize`` and ``to_pil_image``). ``image``: HxWxC uint8."""
    tvf = pytest.importorskip("torchvision.transforms.functional")
    resize, to_pil_image = tvf.resize, tvf.to_pil_image
    target_size = official_get_preprocess_shape(image.shape[0], image.shape[1], target_length)
    return np.array(resize(to_pil_image(image), target_size))


def official_grounding_enc_processor(x: torch.Tensor, img_size: int = 1024) -> torch.Tensor:
    """``ReferSegmDataset.grounding_enc_processor``: OFFICIAL, ``dataset/segm_datasets/RefCOCO_Segm_ds.py``
    lines 100-104, with the class constants of lines 19-21."""
    IMG_MEAN = torch.Tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    IMG_STD = torch.Tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    x = (x - IMG_MEAN) / IMG_STD
    h, w = x.shape[-2:]
    x = F.pad(x, (0, img_size - w, 0, img_size - h))
    return x


def official_grounding_enc_image(image: np.ndarray, img_size: int = 1024) -> tuple[torch.Tensor, tuple]:
    """``ReferSegmDataset.__getitem__``: OFFICIAL, ``dataset/segm_datasets/RefCOCO_Segm_ds.py`` lines 164-166
    (``self.transform = ResizeLongestSide(image_size)``, line 35; ``image`` is the uint8 RGB array of lines
    161-162, read there with OpenCV). Returns (grounding_enc_img, image_resize)."""
    image = official_apply_image(image, img_size)
    image_resize = image.shape[:2]
    grounding_enc_img = official_grounding_enc_processor(
        torch.from_numpy(image).permute(2, 0, 1).contiguous(),
                                                         img_size)
    return grounding_enc_img, image_resize


def official_postprocess_masks(masks: torch.Tensor, input_size, original_size, img_size: int = 1024):
    """``Sam.postprocess_masks``: OFFICIAL, ``model/SAM/modeling/sam.py`` lines 137-172 (``img_size`` is
    ``self.image_encoder.img_size``); GLaMM calls it from ``model/GLaMM.py`` lines 230-247 with
    ``input_size=resize_list[i]``, ``original_size=label_list[i].shape`` and keeps ``pred_mask[:, 0]``."""
    dtype = masks.dtype  # noqa: F841 (unused in the official code too)

    masks = F.interpolate(
        masks.float(),
        (img_size, img_size),
        mode="bilinear",
        align_corners=False,
    )
    # masks = masks.to(dtype)
    masks = masks[..., : input_size[0], : input_size[1]]
    masks = F.interpolate(
        masks, original_size, mode="bilinear", align_corners=False
    )
    return masks


# -- helpers ------------------------------------------------------------------------------------------
#: (width, height) of synthetic images: odd sizes, degenerate strips, upscaling, exactly 1024, larger.
SIZES = [(333, 500), (640, 427), (1, 1000), (1000, 1), (7, 5), (1024, 768), (1500, 2001)]


def _synthetic(w: int, h: int, seed: int = 0) -> Image.Image:
    """Noise over a gradient (hard for resampling: every rounding shows)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    grad = ((xx * 255 / max(w - 1, 1) + yy * 255 / max(h - 1, 1)) / 2)[..., None]
    noise = rng.normal(0, 40, (h, w, 3))
    return Image.fromarray(np.clip(grad + noise, 0, 255).astype(np.uint8))


def _real_images(coco128, n: int = 4) -> list[Image.Image]:
    files = sorted((coco128 / "images").glob("*.jpg"))
    if not files:
        pytest.skip(f"no images in {coco128 / 'images'}")
    out = [Image.open(f).convert("RGB") for f in files[:n - 1]]
    portrait = next((f for f in files if Image.open(f).height > Image.open(f).width), files[n - 1])
    return out + [Image.open(portrait).convert("RGB")]


def _check_equal_official(image: Image.Image, size: int = 1024):
    pv, reshaped = sam_inputs(image, size)
    ref, ref_resize = official_grounding_enc_image(np.array(image.convert("RGB")), size)
    assert reshaped == tuple(ref_resize) == preprocess_shape(image.height, image.width, size)
    assert pv.shape == (1, 3, size, size) and pv.dtype == torch.float32
    assert torch.equal(pv[0], ref), (pv[0] - ref).abs().max()


# -- equal to the official code -----------------------------------------------------------------------
@pytest.mark.parametrize("w,h", SIZES)
def test_sam_inputs_equal_official_synthetic(w, h):
    _check_equal_official(_synthetic(w, h))


def test_sam_inputs_equal_official_real(coco128):
    for image in _real_images(coco128):
        _check_equal_official(image)


def test_sam_inputs_other_size_and_modes():
    """The tiny test architecture's SAM size, and non-RGB images (converted as OpenCV would read them)."""
    _check_equal_official(_synthetic(90, 130), size=64)
    gray = _synthetic(333, 500).convert("L")
    _check_equal_official(gray)
    assert torch.equal(sam_inputs(gray)[0], sam_inputs(Image.merge("RGB", [gray] * 3))[0])
    _check_equal_official(_synthetic(640, 427).convert("RGBA"))


@pytest.mark.parametrize("w,h", SIZES + [(640, 480)])
def test_postprocess_masks_equal_official(w, h):
    reshaped = preprocess_shape(h, w, 1024)
    low = torch.randn(3, 1, 256, 256, generator=torch.Generator().manual_seed(w * h)) * 10
    for dtype in (torch.float32, torch.bfloat16):
        ours = postprocess_masks(low.to(dtype), reshaped, (h, w))
        ref = official_postprocess_masks(low.to(dtype), reshaped, torch.Size((h, w)))[:, 0]
        assert ours.shape == (3, h, w) and ours.dtype == torch.float32
        assert torch.equal(ours, ref)
    small_reshaped = preprocess_shape(h, w, 64)
    if min(small_reshaped) > 0:  # a 1-pixel strip has no column left at 64 (the official code fails too)
        small = postprocess_masks(low[:, :, :16, :16], small_reshaped, (h, w), size=64)
        assert torch.equal(small, official_postprocess_masks(low[:, :, :16, :16], small_reshaped, (h, w),
                                                             img_size=64)[:, 0])


# -- measured against transformers' SamImageProcessor (today's GlammPipeline path) ---------------------
def _against_transformers(images: list[Image.Image], what: str) -> None:
    from transformers import SamImageProcessor

    proc = SamImageProcessor(size={"longest_edge": 1024}, pad_size={"height": 1024, "width": 1024})
    px, mk = 0.0, 0.0
    for i, image in enumerate(images):
        pv, reshaped = sam_inputs(image)
        hf = proc(images=image, return_tensors="pt")
        hf_reshaped = tuple(int(x) for x in hf["reshaped_input_sizes"][0])
        assert hf_reshaped == reshaped, (image.size, hf_reshaped, reshaped)
        px = max(px, (hf["pixel_values"].float() - pv).abs().max().item())
        low = torch.randn(2, 1, 256, 256, generator=torch.Generator().manual_seed(i)) * 10
        size = (image.height, image.width)
        ours = postprocess_masks(low, reshaped, size)
        theirs = proc.post_process_masks([low], [size], [hf_reshaped], binarize=False)[0][:, 0]
        mk = max(mk, (ours - theirs).abs().max().item())
    print(f"\n{what}: SamImageProcessor vs official preprocessing over {len(images)} image(s): "
          f"max |pixel_values| diff {px:.6g}, max |mask logits| diff {mk:.6g}; reshaped sizes agree")
    assert px <= PIXEL_BOUND
    assert mk <= MASK_BOUND


def test_transformers_difference_synthetic():
    _against_transformers([_synthetic(w, h, seed=i) for i, (w, h) in enumerate(SIZES)], "synthetic")


def test_transformers_difference_real(coco128):
    _against_transformers(_real_images(coco128), "coco128")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("w, h", [(640, 480), (333, 41), (7, 300)])
def test_sam_inputs_normalised_on_the_device_equal_the_cpu_ones(w, h):
    """The pipeline normalises and pads on its device (the uint8 image copied there): the same float32
    pixels, bit for bit, as on the CPU."""
    image = Image.fromarray((np.random.default_rng(w).random((h, w, 3)) * 255).astype("uint8"))
    cpu, reshaped = sam_inputs(image)
    cuda, reshaped_cuda = sam_inputs(image, device="cuda")
    assert cuda.device.type == "cuda" and reshaped_cuda == reshaped
    assert torch.equal(cuda.cpu(), cpu)
