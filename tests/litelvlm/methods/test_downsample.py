"""downsample (this project's reading of VTC-Bench, whose code resizes the image's pixels): the grid of visual
tokens average-pooled to K at the LLM input, each pooled token at its window's centre cell.

Checked: on hand-made grids the pooled tokens are ``adaptive_avg_pool2d`` of the grid (by hand: window means
of a linear grid) and their cells the windows' centres; a K that is no h x w product is met by h row bands of
w or w + 1 columns, each band a row of the direct pool; K at every budget 1..N on the tiny GLaMM's 24 x 24
grid and the tiny Sa2VA's 6 x 7 merged grid; K = N is the tokens as they are; on GLaMM the LLM runs the
pooled tokens at the centres' positions (``positions="official"``), ``renumber`` afresh, ``keep`` refused; a
family whose tokens are no grid (VideoGLaMM) is refused with its reason; the FLOPs count's stand-in inputs
pool the squarest grid of N."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litelvlm.errors import LiteLVLMError
from litelvlm.methods import get_method
from litelvlm.methods.downsample import centre, downsample_select, pool_grid, pooled_shape, squarest


def _linear(rows: int, cols: int) -> torch.Tensor:
    """(rows cols, 2) tokens whose channels are 10 x row and col: a window's mean is its centre of mass."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([10.0 * r.flatten(), c.flatten().float()], 1)


def test_a_square_grid_by_hand():
    # 6 x 8 to K = 12: 3 x 4 windows of 2 x 2; centres (lower middle) rows 0, 2, 4, cols 0, 2, 4, 6
    pooled, cells = pool_grid(_linear(6, 8), 6, 8, 12)
    assert pooled_shape(12, 6, 8) == (3, 4, 0)
    rows, cols = torch.tensor([0.5, 2.5, 4.5]), torch.tensor([0.5, 2.5, 4.5, 6.5])
    want = torch.stack([10 * rows[:, None].expand(3, 4).flatten(), cols.repeat(3)], 1)
    torch.testing.assert_close(pooled, want, rtol=0, atol=1e-5)
    assert cells.tolist() == [r * 8 + c for r in (0, 2, 4) for c in (0, 2, 4, 6)]
    # 5 x 5 to K = 4: overlapping windows rows/cols 0..2 and 2..4, centres 1 and 3
    pooled, cells = pool_grid(_linear(5, 5), 5, 5, 4)
    want = torch.tensor([[10.0, 1], [10, 3], [30, 1], [30, 3]])
    torch.testing.assert_close(pooled, want, rtol=0, atol=1e-5)
    assert cells.tolist() == [6, 8, 16, 18]


def test_equal_to_adaptive_avg_pool2d_and_its_rows_for_any_k():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7 * 9, 5, generator=g)
    grid = x.t().reshape(1, 5, 7, 9)
    for k in range(1, 64):
        h, w, r = pooled_shape(k, 7, 9)
        pooled, cells = pool_grid(x, 7, 9, k)
        assert pooled.shape == (k, 5) and h * w + r == k and 0 <= r < h <= 7 and w + (r > 0) <= 9
        assert torch.equal(cells, torch.sort(cells).values) and len(set(cells.tolist())) == k
        narrow = F.adaptive_avg_pool2d(grid, (h, w))[0]
        if r == 0:
            torch.testing.assert_close(pooled, narrow.flatten(1).t(), rtol=0, atol=0)
            continue
        wide, at = F.adaptive_avg_pool2d(grid, (h, w + 1))[0], 0
        extra = 0
        for i in range(h):  # band i: row i of the (h, w) or (h, w + 1) pool
            band = wide[:, i] if (i + 1) * r // h > i * r // h else narrow[:, i]
            extra += band.shape[1] - w
            torch.testing.assert_close(pooled[at:at + band.shape[1]], band.t(), rtol=0, atol=0)
            assert (cells[at:at + band.shape[1]] // 9 == centre(7, h)[i]).all()
            at += band.shape[1]
        assert extra == r and at == k


def test_the_aspect_ratio_is_kept():
    assert pooled_shape(144, 24, 24) == (12, 12, 0) and pooled_shape(64, 24, 24) == (8, 8, 0)
    assert pooled_shape(192, 24, 24) == (13, 14, 10)  # floor(sqrt(192)) = 13 rows, 10 of 15 columns
    assert pooled_shape(20, 6, 7) == (4, 5, 0) and pooled_shape(1, 6, 7) == (1, 1, 0)
    assert pooled_shape(10, 1, 40) == (1, 10, 0) and pooled_shape(10, 40, 1) == (10, 1, 0)
    assert pooled_shape(575, 24, 24) == (24, 23, 23)  # w + 1 never exceeds the grid's 24 columns


def test_a_stand_in_context_pools_the_squarest_grid():
    """The FLOPs count's synthetic inputs (no family's grid): the most square factorisation of N."""
    from types import SimpleNamespace

    assert squarest(576) == (24, 24) and squarest(391) == (17, 23) and squarest(13) == (1, 13)
    x = torch.randn(391, 6, generator=torch.Generator().manual_seed(1))
    ctx = SimpleNamespace(visual_embeds=x, num_visual=391, prepared=None, pipeline=None)
    sel = downsample_select(ctx, 64)
    pooled, cells = pool_grid(x, 17, 23, 64)
    assert torch.equal(sel.features, pooled) and torch.equal(sel.indices, cells)
    assert sel.parts["grid"].tolist() == [17, 23]
    assert sel.parts["pooled"].tolist() == list(pooled_shape(64, 17, 23))


@pytest.mark.parametrize("family", ["glamm", "sa2va"])
def test_every_budget_keeps_k(request, family):
    pipe, prep = request.getfixturevalue(family)
    ctx, spec, n = pipe.context(prep), pipe.spec("downsample"), pipe.num_visual(prep)
    rows, cols = pipe.visual_grid(prep)
    assert (rows, cols) == ((24, 24) if family == "glamm" else (6, 7))
    for k in range(1, n + 1):
        sel = spec.select(ctx, k)
        assert len(sel) == k and sel.features.shape == (k, ctx.visual_embeds.shape[1])
        assert sel.features.dtype == ctx.visual_embeds.dtype and len(set(sel.indices.tolist())) == k
    whole = spec.select(ctx, n)
    assert torch.equal(whole.features, ctx.visual_embeds)
    assert torch.equal(whole.indices.cpu(), torch.arange(n))
    with torch.no_grad():
        for k in ((1, 100, 192) if family == "glamm" else range(1, n + 1)):
            out = pipe.ground(prep, "downsample", k, positions="renumber")
            assert len(out.kept_indices) == k and out.prune_layer == 0
            assert torch.isfinite(out.mask_logits).all()


def test_the_pooled_tokens_stand_at_their_centres(glamm):
    pipe, prep = glamm
    sel = downsample_select(pipe.context(prep), 192)
    with torch.no_grad():
        out = pipe.ground(prep, "downsample", 192)
        at_centres, _ = pipe.run_llm(prep, sel.features, kept=sel.indices)
        afresh, _ = pipe.run_llm(prep, sel.features)
        renumbered = pipe.ground(prep, "downsample", 192, positions="renumber")
    assert out.position_rule == "keep" and torch.equal(out.kept_indices, sel.indices)
    assert torch.equal(out.selection.features, sel.features)
    lay = pipe.layout(prep, pipe.num_visual(prep))
    assert torch.equal(pipe.kept_positions(prep, sel.indices)[0, lay.image_start:lay.image_start + 192].cpu(),
                       lay.image_start + sel.indices.cpu())
    rows = out.seg_positions
    torch.testing.assert_close(out.seg_hidden, at_centres[0, rows], rtol=0, atol=0)
    torch.testing.assert_close(renumbered.seg_hidden, afresh[0, rows], rtol=0, atol=0)
    assert not torch.equal(out.seg_hidden, renumbered.seg_hidden)
    with pytest.raises(LiteLVLMError, match="no single visual token"):
        pipe.ground(prep, "downsample", 192, positions="keep")


def test_a_family_without_a_grid_is_refused_with_its_reason():
    from types import SimpleNamespace

    from litelvlm.registry.families import get_family

    cls = get_family("videoglamm")
    ctx = SimpleNamespace(pipeline=cls.__new__(cls), prepared=None)
    with pytest.raises(LiteLVLMError, match="downsample pools one 2-D grid .*VideoGLaMM's visual tokens are"):
        downsample_select(ctx, 4)
    spec = get_method("downsample")
    assert spec.attention_layers(32) == [] and not spec.original_positions and spec.selects_at_llm_input
    assert "this project's reading" in spec.description and spec.options == ()


def test_on_a_qwen_family_the_pooled_tokens_take_their_centres_m_rope_ids(sa2va):
    pipe, prep = sa2va
    sel = downsample_select(pipe.context(prep), 20)
    with torch.no_grad():
        out = pipe.ground(prep, "downsample", 20)
        at_centres, _ = pipe.run_llm(prep, sel.features, kept=sel.indices)
    lay = pipe.layout(prep, pipe.num_visual(prep))
    ids = pipe.kept_positions(prep, sel.indices)[..., lay.image_start:lay.image_start + 20]
    want = lay.position_ids[..., lay.image_start + sel.indices.to(lay.position_ids.device)]
    assert torch.equal(ids.cpu(), want.cpu())  # (t, h, w) of each centre cell
    torch.testing.assert_close(out.seg_hidden, at_centres[0, out.seg_positions], rtol=0, atol=0)
