"""``litelvlm reversal --grid unipixel`` (this project's study option): the reversal measured on UniPixel's
merged grid, where LiteLVLM selects on that family. The token coverage is checked against block means of the
mask, the mapped similarities against the CLIP-grid run's own similarities through the map, and the
refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from litelvlm.cli import main


def test_token_coverage_is_the_block_mean_where_tokens_are_whole_pixels():
    from litelvlm.qwen_vision.grid import TokenGrid, token_coverage
    from litelvlm.unipixel.protocol import resized_size

    h, w = 280, 364  # multiples of 28 within UniPixel's pixel range: resized to themselves
    assert resized_size(h, w) == (h, w)
    mask = np.random.default_rng(0).random((h, w)) > 0.7
    cov = token_coverage(mask, TokenGrid.from_resized(h, w))
    blocks = mask.reshape(h // 28, 28, w // 28, 28).mean(axis=(1, 3))
    torch.testing.assert_close(cov, torch.as_tensor(blocks), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [(427, 640), (97, 131), (640, 45)])
def test_token_coverage_of_a_full_mask_is_one_and_of_half_is_the_area(size):
    from litelvlm.qwen_vision.grid import TokenGrid, token_coverage
    from litelvlm.unipixel.protocol import resized_size

    h, w = size
    grid = TokenGrid.from_resized(*resized_size(h, w))
    full = token_coverage(np.ones((h, w), bool), grid)
    assert torch.allclose(full, torch.ones_like(full), atol=1e-12)
    top = np.zeros((h, w), bool)
    top[: h // 2] = True
    cov = token_coverage(top, grid)
    # the mean coverage weighted by token area is the mask's share of the image
    assert abs(float(cov.mean()) - (h // 2) / h) < 1e-9


def _reversal(coco, out, grid, *extra):
    return main(
        ["reversal", "--refer-dir", str(coco), "--split", "val", "--limit-sentences", "6", "--layers", "all",
                 "--n-boot", "20", "--pad-to-square", "--grid", grid, "--save-maps", "6", "--out", str(out),
                 *extra])


def test_the_merged_grid_run_is_the_clip_run_through_the_map(coco128, tmp_path):
    from analysis.common.measures.merged_grid import merged_weights
    from litelvlm.clip import load_clip
    from litelvlm.data.refer import load_refer
    from litelvlm.qwen_vision.grid import TokenGrid
    from litelvlm.unipixel.protocol import resized_size

    assert _reversal(coco128, tmp_path / "clip", "clip") == 0 and _reversal(coco128, tmp_path / "up",
                                                                            "unipixel") == 0
    on_clip = pd.read_parquet(tmp_path / "clip" / "similarity_maps.parquet")
    on_up = pd.read_parquet(tmp_path / "up" / "similarity_maps.parquet")
    assert len(on_clip) == len(on_up) > 0
    clip = load_clip("tiny336-random")
    sizes = {r.image_id: (r.height, r.width) for r in load_refer(coco128, None, split="val")}
    for (_, a), (_, b) in zip(on_clip.iterrows(), on_up.iterrows()):
        assert (a["sent_id"], a["layer"]) == (b["sent_id"], b["layer"])
        h, w = sizes[int(a["image_id"])]
        grid = TokenGrid.from_resized(*resized_size(h, w))
        assert (b["rows"], b["cols"]) == (grid.llm_h, grid.llm_w)
        mapped = np.asarray(a["similarity"]) @ merged_weights(clip.geometry, clip.grid, h, w, "unipixel").T
        np.testing.assert_allclose(np.asarray(b["similarity"]), mapped, rtol=0, atol=1e-9)
    rows = pd.read_parquet(tmp_path / "up" / "reversal.parquet")
    assert rows["auroc_reversed"].between(0, 1).all() and (rows["crop_cut_share"] == 0).all()
    assert (rows["n_in"] + rows["n_out"] == rows["n_patches"]).all()


def test_the_merged_grid_needs_the_padded_view(coco128, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        ["reversal", "--refer-dir", str(coco128), "--split", "val", "--limit-sentences", "2", "--grid",
         "unipixel",
               "--out", str(out)])
    assert rc == 2 and "--pad-to-square" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
