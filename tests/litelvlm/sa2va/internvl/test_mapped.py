"""The paired CLIP's scores on Sa2VA-InternVL3's tokens (this project's adaptation): each token of a tile or
of the thumbnail takes the area-weighted mean of the score cells over the box it covers in the original
image."""

from __future__ import annotations

import torch

from litelvlm.sa2va.internvl.mapped import tile_weights
from litelvlm.sa2va.internvl.tiles import TileGrid


def test_each_tiles_tokens_read_the_cells_under_their_tile():
    """A 100 x 50 image cut into two tiles side by side and a thumbnail, a 1 x 2 score map over it: the left
    tile's 256 tokens read the left cell only, the right tile's the right one, the thumbnail's left and right
    halves the same; every row sums to 1."""
    f64 = torch.float64
    src = (torch.tensor([0.0, 50.0], dtype=f64), torch.tensor([0.0, 50.0, 100.0], dtype=f64))
    w = tile_weights(src, TileGrid(cols=2, rows=1, thumbnail=True), (50, 100))
    assert w.shape == (3 * 256, 2)
    torch.testing.assert_close(w.sum(1), torch.ones(3 * 256, dtype=torch.float64))
    assert torch.equal(w[:256, 0], torch.ones(256, dtype=torch.float64))
    assert torch.equal(w[256:512, 1], torch.ones(256, dtype=torch.float64))
    thumb = w[512:].reshape(16, 16, 2)
    assert torch.equal(thumb[:, :8, 0], torch.ones(16, 8, dtype=torch.float64))
    assert torch.equal(thumb[:, 8:, 1], torch.ones(16, 8, dtype=torch.float64))


def test_a_tiles_tokens_come_in_the_llms_order():
    """Inside a tile the tokens are in raster order (16 rows of 16): under a 2 x 2 map over two tiles side by
    side, the left tile's token (r, c) reads the left cell of row r // 8; one tile alone has no thumbnail."""
    f64 = torch.float64
    src = (torch.tensor([0.0, 25.0, 50.0], dtype=f64), torch.tensor([0.0, 50.0, 100.0], dtype=f64))
    left = tile_weights(src, TileGrid(cols=2, rows=1, thumbnail=True), (50, 100))[:256].reshape(16, 16, 4)
    assert torch.equal(left[:8, :, 0], torch.ones(8, 16, dtype=f64))
    assert torch.equal(left[8:, :, 2], torch.ones(8, 16, dtype=f64))
    assert tile_weights(src, TileGrid(cols=1, rows=1, thumbnail=False), (50, 100)).shape == (256, 4)
