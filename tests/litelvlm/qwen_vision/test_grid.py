"""litelvlm.qwen_vision.grid against transformers 5: the processors' patchify output, the vision tower's
window order (``transformers.vision_utils.get_vision_window_index`` and a tiny random Qwen2.5-VL's blocks),
and the resampling of another grid's scores onto the merged grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from litelvlm.qwen_vision import grid as G


def _grids(rng: np.random.RandomState, n: int, max_side: int = 12):
    for _ in range(n):
        yield G.TokenGrid(int(rng.randint(1, 3)), 2 * int(rng.randint(1, max_side)),
                          2 * int(rng.randint(1, max_side)))


# -- patches, tokens, pixels: against the processors' patchify ----------------------------------------------
def _raw_processor(kind: str):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    cls = Qwen2VLImageProcessor if kind == "image" else Qwen2VLVideoProcessor
    return cls(do_resize=False, do_rescale=False, do_normalize=False)


def _check_patches(pixel_values: torch.Tensor, grid: G.TokenGrid, frames: list[torch.Tensor]) -> None:
    """Each row holds the (channel, temporal, 14, 14) pixels of the patch box we compute for it."""
    assert pixel_values.shape == (grid.num_patches, 3 * 2 * 14 * 14)
    boxes, rc = G.patch_boxes(grid), G.patch_rc(grid)
    pv = pixel_values.view(-1, 3, 2, 14, 14)
    for p in range(grid.num_patches):
        x0, y0, x1, y1 = boxes[p].tolist()
        t = int(rc[p, 0])
        for k in range(2):
            assert torch.equal(pv[p, :, k], frames[2 * t + k][:, y0:y1, x0:x1].float()), (p, k)
    assert torch.equal(G.patch_index(grid, rc[:, 0], rc[:, 1], rc[:, 2]), torch.arange(grid.num_patches))


@pytest.mark.parametrize("kind", ["image", "video"])
def test_patch_boxes_hold_the_processors_pixels(kind):
    rng = np.random.RandomState(0 if kind == "image" else 1)
    proc = _raw_processor(kind)
    for grid in _grids(rng, 12, max_side=7):
        grid = G.TokenGrid(1 if kind == "image" else grid.t, grid.h, grid.w)
        frames = [torch.from_numpy(rng.randint(0, 256, (3, grid.h * 14, grid.w * 14), dtype=np.uint8))
                  for _ in range(2 * grid.t)]
        if kind == "image":
            out = proc(images=[frames[0]], return_tensors="pt")
            frames = [frames[0], frames[0]]  # an image is its frame twice
            thw = out["image_grid_thw"][0]
            pv = out["pixel_values"]
        else:
            out = proc(videos=[torch.stack(frames)], return_tensors="pt")
            thw, pv = out["video_grid_thw"][0], out["pixel_values_videos"]
        assert G.TokenGrid.from_thw(thw) == grid
        _check_patches(pv, grid, frames)


def test_protocol_frames_of_odd_sizes_through_the_video_processor():
    """Odd image sizes through UniPixel's frame (PIL resize to multiples of 28, two frames), then the
    transformers 5 video processor with do_resize=False: patch boxes hold the resized frame's pixels."""
    from litelvlm.unipixel.protocol import resize_frame, video_frames

    rng = np.random.RandomState(2)
    proc = _raw_processor("video")
    for h, w in [(1, 1), (37, 301), (97, 13), (480, 640), (333, 333), (2, 399)]:
        frames = video_frames(resize_frame(Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8))))
        out = proc(videos=[frames], return_tensors="pt")
        grid = G.TokenGrid.from_thw(out["video_grid_thw"][0])
        assert grid == G.TokenGrid.from_resized(frames[0].height, frames[0].width) and grid.t == 1
        tensors = [torch.from_numpy(np.array(f)).permute(2, 0, 1) for f in frames]
        _check_patches(out["pixel_values_videos"], grid, tensors)


def test_tokens_are_raster_blocks_of_four_patches():
    rng = np.random.RandomState(3)
    for grid in _grids(rng, 30):
        tb, pb, tp = G.token_boxes(grid), G.patch_boxes(grid), G.token_patches(grid)
        rc, trc = G.patch_rc(grid), G.token_rc(grid)
        assert torch.equal(G.token_of_patch(grid)[tp], torch.arange(grid.num_tokens)[:, None].expand(-1, 4))
        # the 4 patches of token k tile its box, row-major
        assert torch.equal(pb[tp[:, 0], :2], tb[:, :2]) and torch.equal(pb[tp[:, 3], 2:], tb[:, 2:])
        assert torch.equal(rc[tp[:, 0], 0], trc[:, 0])
        raster = (trc[:, 0] * grid.llm_h + trc[:, 1]) * grid.llm_w + trc[:, 2]
        assert torch.equal(raster, torch.arange(grid.num_tokens))  # LLM order is raster order
    with pytest.raises(LiteLVLMError):
        G.TokenGrid(1, 3, 4)


def test_llm_order_matches_get_rope_index():
    """get_rope_index gives the video tokens (t, row, col) positions in LLM order (row, col = token_rc)."""
    from litelvlm.qwen.checkpoint import build_qwen
    from litelvlm.qwen.config import get_preset

    model = build_qwen("tiny")
    tiny = get_preset("tiny")
    grid = G.TokenGrid(1, 6, 10)
    ids = torch.tensor(
        [[1, 2, tiny.token_id("<|vision_start|>")] + [tiny.token_id("<|video_pad|>")] * grid.num_tokens
                        + [tiny.token_id("<|vision_end|>"), 5]])
    types = (ids == tiny.token_id("<|video_pad|>")).int() * 2
    pos, _ = model.model.get_rope_index(ids, types, video_grid_thw=torch.tensor([[1, 6, 10]]),
                                        second_per_grid_ts=torch.tensor([1.0]))
    vis = pos[:, 0, 3:3 + grid.num_tokens] - 3
    assert torch.equal(vis[1:].T, G.token_rc(grid)[:, 1:]) and (vis[0] == 0).all()


# -- the vision tower's windows ---------------------------------------------------------------------
def test_window_index_equals_transformers():
    from transformers.vision_utils import get_vision_window_index

    rng = np.random.RandomState(4)
    for window in (112, 56, 224):
        for _ in range(60):
            grids = list(_grids(rng, int(rng.randint(1, 4)), max_side=14))
            thw = torch.tensor([[g.t, g.h, g.w] for g in grids])
            want, cu = get_vision_window_index(thw, spatial_merge_size=2, window_size=window, patch_size=14)
            got = G.window_index(grids, window)
            assert torch.equal(got, want)
            assert torch.equal(G.window_seqlens(grids, window), cu)
            inv = G.window_inverse(got)
            assert torch.equal(got[inv], torch.arange(got.numel())) and torch.equal(
                inv[got], torch.arange(got.numel()))


def test_window_order_is_what_the_tiny_tower_blocks_see():
    """The blocks of a random tiny Qwen2.5-VL vision tower receive patch_embed(pixels)[window_patch_index],
    and its merged output is in LLM order."""
    from litelvlm.qwen.checkpoint import build_qwen

    visual = build_qwen("tiny", seed=1).model.visual
    cfg = visual.config
    seen = {}
    visual.blocks[0].register_forward_pre_hook(lambda m, args, kwargs: seen.update(x=args[0]),
                                               with_kwargs=True)
    rng = np.random.RandomState(5)
    for grid in [G.TokenGrid(1, 10, 14), G.TokenGrid(1, 16, 8), G.TokenGrid(2, 4, 18)]:
        pixels = torch.from_numpy(rng.randn(grid.num_patches, 3 * 2 * 14 * 14).astype(np.float32))
        thw = torch.tensor([[grid.t, grid.h, grid.w]])
        with torch.no_grad():
            out = visual(pixels, grid_thw=thw)
            embedded = visual.patch_embed(pixels)
        index = G.window_index(grid, cfg.window_size)
        assert torch.equal(seen["x"], embedded[G.window_patch_index(index, cfg.spatial_merge_size)])
        with torch.no_grad():
            merged = visual.merger(out.last_hidden_state)  # last_hidden_state is in window order
        assert torch.allclose(merged[G.window_inverse(index)], out.pooler_output, atol=1e-6)


# -- resampling another grid's scores ---------------------------------------------------------------
def test_resample_identity_and_pooling():
    rng = np.random.RandomState(6)
    for grid in _grids(rng, 20):
        H, W = int(rng.randint(5, 900)), int(rng.randint(5, 900))
        ys, xs = G.token_edges(grid, (H, W))
        s = torch.from_numpy(rng.rand(3, grid.llm_h, grid.llm_w))
        for mode in ("area", "nearest"):
            assert torch.allclose(G.resample_to_grid(s, (ys, xs), grid, (H, W), mode=mode), s, atol=1e-12)
        fine = (torch.linspace(0, H, 2 * grid.llm_h + 1, dtype=torch.float64),
                torch.linspace(0, W, 2 * grid.llm_w + 1, dtype=torch.float64))
        f = torch.from_numpy(rng.rand(2 * grid.llm_h, 2 * grid.llm_w))
        pooled = torch.nn.functional.avg_pool2d(f[None, None], 2)[0, 0]
        assert torch.allclose(G.resample_to_grid(f, fine, grid, (H, W)), pooled, atol=1e-12)
        assert torch.allclose(G.grid_coverage(fine, grid, (H, W)),
                              torch.ones(grid.llm_h, grid.llm_w, dtype=torch.float64))


def _clip_square(H: int, W: int):
    from litelvlm.clip.traces import Geometry
    from litelvlm.data.geometry import transform_params

    return transform_params(Geometry(mode="shortest", resize=336, crop=(336, 336)), H, W)


def test_resample_clip_centre_crop_against_supersampling():
    """CLIP's 24x24 map of the centre-cropped square: exact area means equal a dense point sampling of the
    piecewise-constant map over each token's box; tokens outside the crop get the fill."""
    rng = np.random.RandomState(7)
    for H, W in [(480, 640), (640, 427), (300, 300), (57, 1000)]:
        from litelvlm.unipixel.protocol import resized_size

        grid = G.TokenGrid.from_resized(*resized_size(H, W))
        src = G.source_edges(_clip_square(H, W), 24, 24)
        scores = torch.from_numpy(rng.rand(24, 24))
        out = G.resample_to_grid(scores, src, grid, (H, W))
        cov = G.grid_coverage(src, grid, (H, W))
        ys, xs = G.token_edges(grid, (H, W))
        n = 64
        for i in range(grid.llm_h):
            for j in range(grid.llm_w):
                py = ys[i] + (torch.arange(n, dtype=torch.float64) + 0.5) * (ys[i + 1] - ys[i]) / n
                px = xs[j] + (torch.arange(n, dtype=torch.float64) + 0.5) * (xs[j + 1] - xs[j]) / n
                iy = torch.searchsorted(src[0], py, right=True) - 1
                ix = torch.searchsorted(src[1], px, right=True) - 1
                oky, okx = (iy >= 0) & (iy < 24), (ix >= 0) & (ix < 24)
                inside = oky[:, None] & okx[None, :]
                if cov[i, j] == 0:
                    assert torch.isnan(out[i, j]) and not inside.any()
                    continue
                vals = scores[iy.clamp(0, 23)[:, None], ix.clamp(0, 23)[None, :]][inside]
                assert abs(float(vals.mean()) - float(out[i, j])) < 0.03, (H, W, i, j)
                assert abs(float(inside.double().mean()) - float(cov[i, j])) < 0.05
        if H != W:
            assert torch.isnan(out).any() and (cov == 0).any()  # the crop cut the long side's ends
        assert torch.allclose(G.resample_to_grid(torch.full((24, 24), 2.5), src, grid, (H, W))[cov > 0],
                              torch.tensor(2.5, dtype=torch.float64))
    with pytest.raises(LiteLVLMError):
        G.resample_to_grid(scores, src, grid, (H, W), mode="bilinear")
